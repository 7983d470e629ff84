//! JSON-RPC framing as codex app-server speaks it: one JSON object per line, no `jsonrpc`
//! member, ids that are integers or strings, unknown fields ignored.
//!
//! Owns the classification of an incoming value and the text of outgoing lines. It knows no
//! method's meaning; that belongs to the session, the turn loop and the policy.

use serde_json::{Map, Value, json};

/// An incoming message, classified by which members it has.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// A server→client request: has `id` and `method`.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A reply to one of our requests: has `id` and `result`.
    Response { id: Value, result: Value },
    /// An error reply: has `id` and `error`.
    ErrorResponse {
        id: Value,
        code: i64,
        message: String,
    },
    /// Has `method` and no `id`.
    Notification { method: String, params: Value },
    /// Valid JSON that fits none of the above.
    Unrecognised,
}

/// Classifies one parsed line, taking its parts without cloning them.
pub(crate) fn classify(value: Value) -> Incoming {
    let Value::Object(mut object) = value else {
        return Incoming::Unrecognised;
    };
    let method = match object.remove("method") {
        Some(Value::String(method)) => Some(method),
        Some(_) => return Incoming::Unrecognised,
        None => None,
    };
    let id = object
        .remove("id")
        .filter(|id| id.is_i64() || id.is_string());
    let params = object.remove("params").unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(method)) => Incoming::Request { id, method, params },
        (None, Some(method)) => Incoming::Notification { method, params },
        (Some(id), None) => {
            if let Some(error) = object.remove("error") {
                Incoming::ErrorResponse {
                    id,
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message")
                        .to_string(),
                }
            } else if let Some(result) = object.remove("result") {
                Incoming::Response { id, result }
            } else {
                Incoming::Unrecognised
            }
        }
        (None, None) => Incoming::Unrecognised,
    }
}

/// `{"id":…,"method":…,"params":…}`; `params` is left out when null.
pub(crate) fn request(id: i64, method: &str, params: Value) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("method".into(), json!(method));
    if !params.is_null() {
        object.insert("params".into(), params);
    }
    Value::Object(object)
}

/// `{"method":…}` with params when not null.
pub(crate) fn notification(method: &str, params: Value) -> Value {
    let mut object = Map::new();
    object.insert("method".into(), json!(method));
    if !params.is_null() {
        object.insert("params".into(), params);
    }
    Value::Object(object)
}

/// `{"id":…,"result":…}`, echoing the server's id exactly.
pub(crate) fn response(id: &Value, result: Value) -> Value {
    json!({"id": id, "result": result})
}

/// `{"id":…,"error":{"code":…,"message":…}}`.
pub(crate) fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({"id": id, "error": {"code": code, "message": message}})
}

/// JSON-RPC "method not found", the reply to server requests Maestro does not handle.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;

/// A stable text key for an id, so integer 1 and string "1" stay distinct.
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified_by_their_members() {
        assert_eq!(
            classify(json!({"id": 0, "method": "item/tool/call", "params": {"a": 1}})),
            Incoming::Request {
                id: json!(0),
                method: "item/tool/call".into(),
                params: json!({"a": 1})
            }
        );
        assert_eq!(
            classify(json!({"id": "x", "result": {}})),
            Incoming::Response {
                id: json!("x"),
                result: json!({})
            }
        );
        assert_eq!(
            classify(json!({"id": 3, "error": {"code": -32600, "message": "Not initialized"}})),
            Incoming::ErrorResponse {
                id: json!(3),
                code: -32600,
                message: "Not initialized".into()
            }
        );
        assert_eq!(
            classify(json!({"method": "turn/started", "emittedAtMs": 1})),
            Incoming::Notification {
                method: "turn/started".into(),
                params: Value::Null
            }
        );
        for odd in [
            json!([1, 2]),
            json!("text"),
            json!({"id": 1}),
            json!({"method": 5}),
            json!({}),
        ] {
            assert_eq!(classify(odd.clone()), Incoming::Unrecognised, "{odd}");
        }
        // An id that is neither integer nor string is no id: a notification.
        assert!(matches!(
            classify(json!({"id": 1.5, "method": "m"})),
            Incoming::Notification { .. }
        ));
    }

    #[test]
    fn outgoing_lines_omit_null_params_and_echo_ids() {
        assert_eq!(
            request(7, "initialize", Value::Null),
            json!({"id": 7, "method": "initialize"})
        );
        assert_eq!(
            notification("initialized", Value::Null),
            json!({"method": "initialized"})
        );
        assert_eq!(
            response(&json!("s-1"), json!({"decision": "cancel"})),
            json!({"id": "s-1", "result": {"decision": "cancel"}})
        );
        assert_eq!(
            error_response(&json!(2), METHOD_NOT_FOUND, "no"),
            json!({"id": 2, "error": {"code": -32601, "message": "no"}})
        );
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
    }
}
