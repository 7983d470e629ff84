//! The connection table: who holds the endpoint's connection slots, and who gives one up when
//! a new client arrives and every slot is taken.
//!
//! A slot is held from accept to close. A connection still waiting for its request head (or
//! lingering after its answer) can be evicted; one whose head is complete and whose answer is
//! being written cannot. When the table is full, a newcomer evicts the connection that has
//! waited longest, lingering ones first, because a client that has not finished its head in
//! all that time is the one most likely never to: a slow or idle client can then delay others
//! by at most one eviction, never lock them out. Only when every slot is answering is the
//! newcomer refused.
//!
//! Evicting wakes the victim's serving thread by shutting down the read side of its socket
//! (through a second handle kept here), so the thread answers 503 and ends at once instead of
//! waiting for its deadline. Knows nothing of HTTP.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The table, shared by the accept thread and every connection thread.
#[derive(Debug)]
pub(crate) struct Slots {
    limit: usize,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    next_id: u64,
    list: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    /// When the connection entered its current stage.
    since: Instant,
    stage: Stage,
    /// A second handle on the socket, used only to shut its read side down on eviction.
    socket: TcpStream,
    evicted: Arc<AtomicBool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Accepted, the request head not complete yet: evictable.
    Head,
    /// Head complete, the answer being built and written: never evicted.
    Answering,
    /// Answer written, draining what the client still sends: evicted before anyone else.
    Lingering,
}

/// What [`Slots::admit`] decided for a new connection.
#[derive(Debug)]
pub(crate) enum Admission {
    /// The connection holds a slot until the ticket is dropped.
    Admitted(Ticket),
    /// Every slot is answering; the connection must be refused.
    Full,
}

impl Slots {
    pub(crate) fn new(limit: usize) -> Arc<Slots> {
        Arc::new(Slots {
            limit: limit.max(1),
            entries: Mutex::new(Entries::default()),
        })
    }

    /// Gives `socket` a slot, evicting the longest-waiting evictable connection when the table
    /// is full. Refuses only when no slot can be freed (or the socket cannot be duplicated, so
    /// it could never be evicted itself). `head_complete` admits it straight into answering:
    /// its whole head had arrived by the time it was accepted.
    pub(crate) fn admit(self: &Arc<Self>, socket: &TcpStream, head_complete: bool) -> Admission {
        let Ok(handle) = socket.try_clone() else {
            return Admission::Full;
        };
        let mut entries = self.lock();
        if entries.list.len() >= self.limit {
            let victim = entries
                .list
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.stage != Stage::Answering)
                .min_by_key(|(_, entry)| (entry.stage != Stage::Lingering, entry.since))
                .map(|(index, _)| index);
            let Some(victim) = victim else {
                return Admission::Full;
            };
            let victim = entries.list.swap_remove(victim);
            victim.evicted.store(true, Ordering::SeqCst);
            // Wakes a read blocked in the victim's thread; it sees the flag and answers 503.
            let _ = victim.socket.shutdown(Shutdown::Read);
        }
        let id = entries.next_id;
        entries.next_id += 1;
        let evicted = Arc::new(AtomicBool::new(false));
        entries.list.push(Entry {
            id,
            since: Instant::now(),
            stage: if head_complete {
                Stage::Answering
            } else {
                Stage::Head
            },
            socket: handle,
            evicted: Arc::clone(&evicted),
        });
        Admission::Admitted(Ticket {
            id,
            evicted,
            slots: Arc::clone(self),
        })
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().list.len()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // The table stays consistent whatever a panicking holder was doing: every change is a
        // single push, remove or field store.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_stage(&self, id: u64, stage: Stage) -> bool {
        let mut entries = self.lock();
        match entries.list.iter_mut().find(|entry| entry.id == id) {
            Some(entry) => {
                entry.stage = stage;
                entry.since = Instant::now();
                true
            }
            None => false,
        }
    }
}

/// One connection's hold on a slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    evicted: Arc<AtomicBool>,
    slots: Arc<Slots>,
}

impl Ticket {
    /// The head is complete: the connection may no longer be evicted. False when it was
    /// evicted first (its slot already belongs to someone else).
    pub(crate) fn answering(&self) -> bool {
        self.slots.set_stage(self.id, Stage::Answering)
    }

    /// The answer is written: the connection may be evicted again while it drains.
    pub(crate) fn lingering(&self) {
        self.slots.set_stage(self.id, Stage::Lingering);
    }

    /// Whether a newcomer took this connection's slot.
    pub(crate) fn evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.slots.lock().list.retain(|entry| entry.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair: (client side, server side).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    fn admitted(admission: Admission) -> Ticket {
        match admission {
            Admission::Admitted(ticket) => ticket,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn a_full_table_evicts_the_longest_waiting_head_and_wakes_its_reader() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(2);
        let (_client_a, mut server_a) = pair(&listener);
        let (_client_b, server_b) = pair(&listener);
        let (_client_c, server_c) = pair(&listener);
        let a = admitted(slots.admit(&server_a, false));
        let b = admitted(slots.admit(&server_b, false));
        let c = admitted(slots.admit(&server_c, false));
        assert!(a.evicted() && !b.evicted() && !c.evicted());
        assert_eq!(slots.len(), 2);
        // The evicted connection's blocked read returns at once instead of waiting.
        let mut buffer = [0u8; 8];
        assert_eq!(server_a.read(&mut buffer).unwrap(), 0);
        assert!(
            !a.answering(),
            "an evicted connection cannot start answering"
        );
        drop(a);
        assert_eq!(
            slots.len(),
            2,
            "dropping an evicted ticket frees nothing twice"
        );
    }

    #[test]
    fn answering_connections_are_never_evicted_and_lingering_ones_go_first() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let slots = Slots::new(2);
        let (_client_a, server_a) = pair(&listener);
        let (_client_b, server_b) = pair(&listener);
        let (_client_c, server_c) = pair(&listener);
        let (_client_d, server_d) = pair(&listener);
        let a = admitted(slots.admit(&server_a, false));
        let b = admitted(slots.admit(&server_b, false));
        assert!(a.answering() && b.answering());
        assert!(matches!(slots.admit(&server_c, false), Admission::Full));
        b.lingering();
        let c = admitted(slots.admit(&server_c, false));
        assert!(b.evicted() && !a.evicted());
        drop(b);
        assert!(c.answering());
        assert!(matches!(slots.admit(&server_d, false), Admission::Full));
        drop(a);
        let _d = admitted(slots.admit(&server_d, false));
        assert_eq!(slots.len(), 2);
    }
}
