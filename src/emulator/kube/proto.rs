//! Decoding of the Kubernetes protobuf wire format for request bodies.
//! `kubectl create namespace`, `kubectl create serviceaccount` and
//! `kubectl create token` (a TokenRequest) send their objects as `application/vnd.kubernetes.protobuf` (a `k8s\0`-prefixed
//! `runtime.Unknown` envelope around the object). Responses are always JSON,
//! which client-go accepts by the response's Content-Type.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// A protobuf field value as read off the wire.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

/// Splits a message into `(field number, value)` pairs.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Field::Varint(read_varint(buf, &mut pos)?))),
            2 => {
                let len =
                    usize::try_from(read_varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
}

fn string_map(entries: &[&[u8]]) -> Result<Value, String> {
    let mut m = Map::new();
    for e in entries {
        let (mut k, mut v) = (String::new(), String::new());
        for (num, f) in fields(e)? {
            if let Field::Bytes(b) = f {
                match num {
                    1 => k = text(b)?,
                    2 => v = text(b)?,
                    _ => {}
                }
            }
        }
        m.insert(k, Value::String(v));
    }
    Ok(Value::Object(m))
}

fn object_meta(buf: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    let mut labels = Vec::new();
    let mut annotations = Vec::new();
    let mut finalizers = Vec::new();
    for (num, f) in fields(buf)? {
        match (num, f) {
            (1, Field::Bytes(b)) if !b.is_empty() => {
                m.insert("name".into(), json!(text(b)?));
            }
            (2, Field::Bytes(b)) if !b.is_empty() => {
                m.insert("generateName".into(), json!(text(b)?));
            }
            (3, Field::Bytes(b)) if !b.is_empty() => {
                m.insert("namespace".into(), json!(text(b)?));
            }
            (6, Field::Bytes(b)) if !b.is_empty() => {
                m.insert("resourceVersion".into(), json!(text(b)?));
            }
            (11, Field::Bytes(b)) => labels.push(b),
            (12, Field::Bytes(b)) => annotations.push(b),
            (14, Field::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), string_map(&labels)?);
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), string_map(&annotations)?);
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

fn object_reference(buf: &[u8]) -> Result<Value, String> {
    let names = [
        "",
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ];
    string_fields(buf, &names)
}

fn string_fields(buf: &[u8], names: &[&str]) -> Result<Value, String> {
    let mut m = Map::new();
    for (num, f) in fields(buf)? {
        if let (Some(name), Field::Bytes(b)) = (names.get(num as usize), f)
            && !name.is_empty()
            && !b.is_empty()
        {
            m.insert((*name).to_string(), json!(text(b)?));
        }
    }
    Ok(Value::Object(m))
}

/// `SelfSubjectAccessReviewSpec`: resource or non-resource attributes.
fn access_review_spec(buf: &[u8]) -> Result<Value, String> {
    let mut spec = Map::new();
    for (num, f) in fields(buf)? {
        match (num, f) {
            (1, Field::Bytes(b)) => {
                let names = [
                    "",
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                spec.insert("resourceAttributes".into(), string_fields(b, &names)?);
            }
            (2, Field::Bytes(b)) => {
                spec.insert(
                    "nonResourceAttributes".into(),
                    string_fields(b, &["", "path", "verb"])?,
                );
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

/// `TokenRequestSpec` (k8s.io/api/authentication/v1): `audiences` (1),
/// `boundObjectRef` (3), `expirationSeconds` (4).
fn token_request_spec(buf: &[u8]) -> Result<Value, String> {
    let mut spec = Map::new();
    let mut audiences = Vec::new();
    for (num, f) in fields(buf)? {
        match (num, f) {
            (1, Field::Bytes(b)) => audiences.push(json!(text(b)?)),
            (3, Field::Bytes(b)) => {
                spec.insert(
                    "boundObjectRef".into(),
                    string_fields(b, &["", "kind", "apiVersion", "name", "uid"])?,
                );
            }
            (4, Field::Varint(v)) => {
                // int64 on the wire: a negative value is its two's complement.
                spec.insert("expirationSeconds".into(), json!(v as i64));
            }
            _ => {}
        }
    }
    if !audiences.is_empty() {
        spec.insert("audiences".into(), Value::Array(audiences));
    }
    Ok(Value::Object(spec))
}

/// Decodes a protobuf request body into the JSON form of the object.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body lacks the k8s envelope prefix")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, f) in fields(envelope)? {
        match (num, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    if let Field::Bytes(b) = f {
                        match n {
                            1 => api_version = text(b)?,
                            2 => kind = text(b)?,
                            _ => {}
                        }
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind.clone()));
    let mut secrets = Vec::new();
    let mut pull_secrets = Vec::new();
    for (num, f) in fields(raw)? {
        match (kind.as_str(), num, f) {
            (_, 1, Field::Bytes(b)) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            ("Namespace", 2, Field::Bytes(b)) => {
                let mut finalizers = Vec::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        finalizers.push(json!(text(s)?));
                    }
                }
                if !finalizers.is_empty() {
                    obj.insert("spec".into(), json!({"finalizers": finalizers}));
                }
            }
            ("ServiceAccount", 2, Field::Bytes(b)) => secrets.push(object_reference(b)?),
            ("ServiceAccount", 3, Field::Bytes(b)) => pull_secrets.push(object_reference(b)?),
            ("ServiceAccount", 4, Field::Varint(v)) => {
                obj.insert("automountServiceAccountToken".into(), json!(v != 0));
            }
            ("SelfSubjectAccessReview", 2, Field::Bytes(b)) => {
                obj.insert("spec".into(), access_review_spec(b)?);
            }
            ("TokenRequest", 2, Field::Bytes(b)) => {
                obj.insert("spec".into(), token_request_spec(b)?);
            }
            ("Namespace" | "ServiceAccount" | "SelfSubjectAccessReview" | "TokenRequest", _, _) => {
            }
            (other, _, _) => {
                return Err(format!(
                    "protobuf bodies of kind {other:?} are not supported; send JSON"
                ));
            }
        }
    }
    if !secrets.is_empty() {
        obj.insert("secrets".into(), Value::Array(secrets));
    }
    if !pull_secrets.is_empty() {
        obj.insert("imagePullSecrets".into(), Value::Array(pull_secrets));
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(num: u8, b: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, u8::try_from(b.len()).expect("short")];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_namespace_envelope() {
        let label = [bytes_field(1, b"team"), bytes_field(2, b"a")].concat();
        let meta = [bytes_field(1, b"demo"), bytes_field(11, &label)].concat();
        let raw = bytes_field(1, &meta);
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, b"Namespace")].concat();
        let body = [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, &raw),
        ]
        .concat();
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "a"}}})
        );
        assert!(decode(b"nope").is_err());
    }

    #[test]
    fn decodes_a_token_request_envelope() {
        let bound = [bytes_field(1, b"Pod"), bytes_field(3, b"web")].concat();
        // expirationSeconds 3600 = varint 0x90 0x1c.
        let spec = [
            bytes_field(1, b"p.svc.id.goog"),
            bytes_field(3, &bound),
            vec![4 << 3, 0x90, 0x1c],
        ]
        .concat();
        let raw = [bytes_field(1, &[]), bytes_field(2, &spec)].concat();
        let type_meta = [
            bytes_field(1, b"authentication.k8s.io/v1"),
            bytes_field(2, b"TokenRequest"),
        ]
        .concat();
        let body = [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, &raw),
        ]
        .concat();
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
                "spec": {"audiences": ["p.svc.id.goog"], "expirationSeconds": 3600,
                    "boundObjectRef": {"kind": "Pod", "name": "web"}}})
        );
    }
}
