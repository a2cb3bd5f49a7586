//! The spec as written: serde types that mirror the file, with the source
//! span of every value worth pointing at. YAML and TOML share these types, and
//! the JSON Schema in `schema/wi.schema.json` is generated from them.
//!
//! Nothing here checks meaning; `validate` turns these into the [`super::Model`].
//! No `flatten` and no untagged enums: serde buffers those and the spans are lost.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A value and the byte range it occupies in the spec file.
///
/// Deserializes from both serde-saphyr (YAML) and toml with spans: both crates
/// recognise a private newtype/struct name and hand over the location, and this
/// type asks for both. Deserializers that honour neither hint but forward
/// newtypes and structs to `deserialize_any` yield the value without a span;
/// serde_json does not (its `deserialize_struct` rejects scalars), which is
/// why JSON specs are read through the YAML parser.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Byte range in the source, when the deserializer reported one.
    pub span: Option<Range<usize>>,
}

impl<T> Sp<T> {
    /// A value with no known location.
    pub fn unspanned(value: T) -> Self {
        Sp { value, span: None }
    }

    /// The span (cloned), ready for a label.
    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }
}

impl<T: PartialEq> PartialEq for Sp<T> {
    /// Equality ignores the location.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

// The names the two span-aware deserializers look for (serde-saphyr 2.x
// `Spanned`, serde_spanned 1.x via toml). Tests in `tests/spec/model.rs`
// check that YAML and TOML both still produce spans.
pub(super) const SAPHYR_NEWTYPE: &str = "__yaml_spanned";
const SAPHYR_MARKER: &str = "__serde_saphyr_private_spanned";
const TOML_NAME: &str = "$__serde_spanned_private_Spanned";
pub(super) const TOML_START: &str = "$__serde_spanned_private_start";
pub(super) const TOML_END: &str = "$__serde_spanned_private_end";
pub(super) const TOML_VALUE: &str = "$__serde_spanned_private_value";
const TOML_FIELDS: &[&str] = &[TOML_START, TOML_END, TOML_VALUE];

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SAPHYR_NEWTYPE, NewtypeVisitor(PhantomData))
    }
}

/// The `visit_*` methods both visitors share: a scalar or sequence handed over
/// directly (no span) becomes an unspanned value.
macro_rules! plain_visits {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            plain(v.into_deserializer())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            plain(de::value::SeqAccessDeserializer::new(seq))
        }
    };
}

struct NewtypeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NewtypeVisitor<T> {
    type Value = Sp<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // serde-saphyr ignores the struct name and yields its synthetic map;
        // toml recognises the name and yields start/end/value.
        d.deserialize_struct(TOML_NAME, TOML_FIELDS, InnerVisitor(PhantomData))
    }

    // Deserializers that do not forward newtypes hand us the value directly.
    plain_visits!();
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        plain(de::value::MapAccessDeserializer::new(map))
    }
}

fn plain<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Sp<T>, D::Error> {
    T::deserialize(d).map(Sp::unspanned)
}

struct InnerVisitor<T>(PhantomData<T>);

/// A key of the synthetic map the span-aware deserializers hand over, read
/// without allocating (a spec has a few of these per value).
enum SpanKey {
    SaphyrMarker,
    Value,
    Referenced,
    Defined,
    TomlStart,
    TomlEnd,
    TomlValue,
    /// Any other key: the map is a plain one (kept for [`PrependKey`]).
    Other(String),
}

impl SpanKey {
    /// The key as written.
    fn into_written(self) -> String {
        match self {
            SpanKey::SaphyrMarker => SAPHYR_MARKER.to_owned(),
            SpanKey::Value => "value".to_owned(),
            SpanKey::Referenced => "referenced".to_owned(),
            SpanKey::Defined => "defined".to_owned(),
            SpanKey::TomlStart => TOML_START.to_owned(),
            SpanKey::TomlEnd => TOML_END.to_owned(),
            SpanKey::TomlValue => TOML_VALUE.to_owned(),
            SpanKey::Other(written) => written,
        }
    }
}

impl<'de> Deserialize<'de> for SpanKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = SpanKey;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<SpanKey, E> {
                Ok(match v {
                    SAPHYR_MARKER => SpanKey::SaphyrMarker,
                    "value" => SpanKey::Value,
                    "referenced" => SpanKey::Referenced,
                    "defined" => SpanKey::Defined,
                    TOML_START => SpanKey::TomlStart,
                    TOML_END => SpanKey::TomlEnd,
                    TOML_VALUE => SpanKey::TomlValue,
                    other => SpanKey::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// The byte range of a serde-saphyr location (unknown locations have line 0).
fn saphyr_range(loc: &serde_saphyr::Location) -> Option<Range<usize>> {
    if loc.line() == 0 {
        return None;
    }
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    Some(start..start.saturating_add(len))
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for InnerVisitor<T> {
    type Value = Sp<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(first) = map.next_key::<SpanKey>()? else {
            return plain(de::value::MapAccessDeserializer::new(map));
        };
        match first {
            SpanKey::SaphyrMarker => {
                let _ = map.next_value::<de::IgnoredAny>()?;
                let mut value = None;
                let mut span = None;
                while let Some(key) = map.next_key::<SpanKey>()? {
                    match key {
                        SpanKey::Value => value = Some(map.next_value::<T>()?),
                        SpanKey::Referenced => {
                            span = saphyr_range(&map.next_value::<serde_saphyr::Location>()?);
                        }
                        // Locations only deserialize as structs, never as "any".
                        SpanKey::Defined => {
                            let _ = map.next_value::<serde_saphyr::Location>()?;
                        }
                        _ => {
                            let _ = map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
                Ok(Sp { value, span })
            }
            SpanKey::TomlStart | SpanKey::TomlEnd | SpanKey::TomlValue => {
                let mut start = None;
                let mut end = None;
                let mut value = None;
                let mut key = Some(first);
                while let Some(k) = key {
                    match k {
                        SpanKey::TomlStart => start = Some(map.next_value::<usize>()?),
                        SpanKey::TomlEnd => end = Some(map.next_value::<usize>()?),
                        SpanKey::TomlValue => value = Some(map.next_value::<T>()?),
                        _ => {
                            let _ = map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                    key = map.next_key::<SpanKey>()?;
                }
                let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
                let span = match (start, end) {
                    (Some(s), Some(e)) if s <= e => Some(s..e),
                    _ => None,
                };
                Ok(Sp { value, span })
            }
            first => {
                // A plain map from a deserializer without spans: re-attach the first key.
                let first_key: de::value::StringDeserializer<A::Error> =
                    first.into_written().into_deserializer();
                plain(de::value::MapAccessDeserializer::new(PrependKey {
                    first: Some(first_key),
                    rest: map,
                }))
            }
        }
    }

    plain_visits!();
}

struct PrependKey<K, A> {
    first: Option<K>,
    rest: A,
}

impl<'de, K, A> MapAccess<'de> for PrependKey<K, A>
where
    K: Deserializer<'de, Error = A::Error>,
    A: MapAccess<'de>,
{
    type Error = A::Error;

    fn next_key_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.first.take() {
            Some(k) => seed.deserialize(k).map(Some),
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        self.rest.next_value_seed(seed)
    }
}

/// A missing list, `clusters:` with nothing after it, and `[]` all mean "none"
/// (so commenting out every item of a list keeps the file valid).
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A list of strings, each with its span, the list with its own.
pub type SpList = Sp<Vec<Sp<String>>>;

/// A `wi` spec: the clusters, Google service accounts and Kubernetes service
/// account mappings that must exist. Keys are camelCase.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "wi spec")]
pub struct RawSpec {
    /// Format version of this file. Always the number 1 (not the string "1").
    pub version: Sp<Version>,
    /// Who this file's objects belong to: a short name (lowercase letters,
    /// digits and hyphens, at most 30) recorded on every account, KSA and
    /// namespace `wi` creates or adopts for it. Specs of different owners
    /// share a project without touching each other's objects. Without it the
    /// file has the unnamed owner older `wi` versions wrote.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$"))]
    pub owner: Option<Sp<String>>,
    /// Values applied to every item that omits them.
    #[serde(default)]
    pub defaults: Option<Sp<RawDefaults>>,
    /// Project ids `wi` manages. Projects used by clusters and accounts are
    /// managed too, so this list is only needed for projects nothing else names.
    #[serde(default)]
    pub projects: Option<SpList>,
    /// GKE clusters.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<RawCluster>>")]
    pub clusters: Vec<Sp<RawCluster>>,
    /// Google service accounts `wi` creates (or adopts) and grants roles to.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<RawServiceAccount>>")]
    pub service_accounts: Vec<Sp<RawServiceAccount>>,
    /// Kubernetes service accounts that act as Google service accounts.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<RawMapping>>")]
    pub mappings: Vec<Sp<RawMapping>>,
    /// Members that must not hold `roles/iam.workloadIdentityUser` on an
    /// account, even one `wi` does not own.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[schemars(with = "Option<Vec<RawAbsent>>")]
    pub absent: Vec<Sp<RawAbsent>>,
}

/// `version`: a number as written, or the text of a quoted one (refused by
/// validation at its line, with a clearer message than a type error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// `version: 1`.
    Number(u64),
    /// `version: "1"`.
    Text(String),
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Version::Number(n) => serializer.serialize_u64(*n),
            Version::Text(t) => serializer.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the number 1")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Version::Number(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(Version::Number)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Version::Text(v.to_owned()))
            }
        }
        // `any`: a quoted "1" must arrive as text, not be read as a number.
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "format": "uint32",
            "minimum": 1,
            "maximum": 1
        })
    }
}

/// A Google Cloud region or zone, for the schema: the names of
/// [`super::locations::REGIONS`] and their zones.
pub struct Location;

impl JsonSchema for Location {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Location".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut names = Vec::new();
        for (region, zones) in super::locations::REGIONS {
            names.push((*region).to_owned());
            names.extend(zones.iter().map(|z| format!("{region}-{z}")));
        }
        schemars::json_schema!({
            "description": "A Google Cloud region (`us-central1`) or zone (`us-central1-a`).",
            "type": "string",
            "enum": names
        })
    }
}

/// Defaults for items that omit a field.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// Project id for clusters and service accounts without `project`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"))]
    pub project: Option<Sp<String>>,
    /// Location (region or zone) for clusters without `location`.
    #[schemars(with = "Option<Location>")]
    pub location: Option<Sp<String>>,
}

/// A GKE cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Cluster")]
pub struct RawCluster {
    /// Cluster name, unique within its project.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"))]
    pub name: Sp<String>,
    /// Project id; default `defaults.project`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"))]
    pub project: Option<Sp<String>>,
    /// Region (`us-central1`) or zone (`us-central1-a`); default `defaults.location`.
    #[schemars(with = "Option<Location>")]
    pub location: Option<Sp<String>>,
    /// Whether the cluster must have Workload Identity (a workload pool). Default true.
    pub workload_identity: Option<Sp<bool>>,
    /// The cluster is a GKE Autopilot cluster: Workload Identity is always on
    /// and GKE manages its node pools (on the GKE metadata server), so
    /// `workloadIdentity: false` and a restricting `metadataServer` are errors.
    pub autopilot: Option<Sp<bool>>,
    /// Which node pools must run the GKE metadata server: `all` (the default
    /// when Workload Identity is on), `none`, or a list of pool names.
    pub metadata_server: Option<Sp<MetadataServer>>,
    /// Groups this cluster belongs to; mappings can name a group instead of clusters.
    pub groups: Option<SpList>,
    /// A kubeconfig context to reach the cluster's Kubernetes API instead of
    /// the GKE endpoint (for private clusters behind a proxy).
    pub kube_context: Option<Sp<String>>,
    /// Create the cluster with these settings if it does not exist.
    pub create: Option<Sp<RawCreate>>,
}

/// The minimal settings to create a missing cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Create")]
pub struct RawCreate {
    /// Nodes in the default pool (per zone). Default 1.
    #[schemars(range(min = 1, max = 1000))]
    pub initial_node_count: Option<Sp<u32>>,
    /// Machine type of the default pool, e.g. `e2-standard-4`.
    #[schemars(regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"))]
    pub machine_type: Option<Sp<String>>,
    /// GKE release channel.
    pub release_channel: Option<Sp<ReleaseChannel>>,
    /// Create an Autopilot cluster (regional only; GKE picks the nodes, so
    /// no `initialNodeCount` or `machineType`).
    pub autopilot: Option<Sp<bool>>,
}

/// A GKE release channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleaseChannel {
    /// Newest versions first.
    Rapid,
    /// The default channel.
    Regular,
    /// Most proven versions.
    Stable,
    /// Longer support.
    Extended,
}

impl ReleaseChannel {
    /// The GKE API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseChannel::Rapid => "RAPID",
            ReleaseChannel::Regular => "REGULAR",
            ReleaseChannel::Stable => "STABLE",
            ReleaseChannel::Extended => "EXTENDED",
        }
    }
}

/// `metadataServer`: `all`, `none`, or a list of node pool names.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataServer {
    /// Every pool.
    All,
    /// No pool: leave metadata modes alone.
    None,
    /// Only these pools.
    Pools(Vec<Sp<String>>),
}

impl Serialize for MetadataServer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MetadataServer::All => serializer.serialize_str("all"),
            MetadataServer::None => serializer.serialize_str("none"),
            MetadataServer::Pools(p) => p.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MetadataServer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetadataServer;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"all\", \"none\" or a list of node pool names")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "all" => Ok(MetadataServer::All),
                    "none" => Ok(MetadataServer::None),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut pools = Vec::new();
                while let Some(p) = seq.next_element::<Sp<String>>()? {
                    pools.push(p);
                }
                Ok(MetadataServer::Pools(pools))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for MetadataServer {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MetadataServer".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`all`, `none`, or the node pools that must run the GKE metadata server.",
            "oneOf": [
                { "type": "string", "enum": ["all", "none"] },
                {
                    "type": "array",
                    "items": { "type": "string", "pattern": "^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$" },
                    "minItems": 1,
                    "uniqueItems": true
                }
            ]
        })
    }
}

/// A Google service account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ServiceAccount")]
pub struct RawServiceAccount {
    /// Account id: the part of the email before `@`, 6-30 characters.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"))]
    pub name: Sp<String>,
    /// Project id; default `defaults.project`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"))]
    pub project: Option<Sp<String>>,
    /// Display name (at most 100 characters).
    #[schemars(length(max = 100))]
    pub display_name: Option<Sp<String>>,
    /// Description (at most 200 characters; `wi` adds its ownership marker).
    #[schemars(length(max = 200))]
    pub description: Option<Sp<String>>,
    /// Project-level roles granted to this account in its own project.
    pub roles: Option<SpList>,
    /// Take ownership of an existing account `wi` did not create. Default false.
    pub adopt: Option<Sp<bool>>,
}

/// Whether `wi` creates the namespace and KSA or only annotates an existing KSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Manage {
    /// Create the namespace and KSA if missing (the default).
    Create,
    /// Only annotate a KSA someone else manages.
    Annotate,
}

/// Kubernetes service accounts in some clusters acting as one Google service account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Mapping")]
pub struct RawMapping {
    /// A declared account's name (in any file of the set), or the full email
    /// of an account managed elsewhere: `NAME@PROJECT.iam.gserviceaccount.com`,
    /// or a Google-managed one (`NUMBER-compute@developer.gserviceaccount.com`,
    /// `PROJECT@appspot.gserviceaccount.com`, a service agent).
    /// Omit it for direct mode: the mapping then needs `roles`.
    pub service_account: Option<Sp<String>>,
    /// Direct mode: IAM roles granted to the Kubernetes identity itself
    /// (its `principal://` member, or the principal set's), with no Google
    /// service account: `roles/NAME` on the clusters' project, or
    /// `{role, project}` / `{role, serviceAccount}` on another project or on
    /// a service account.
    #[schemars(length(min = 1))]
    pub roles: Option<Vec<Sp<RawRole>>>,
    /// Grant `roles` to every KSA of `namespace` (`namespace`) or of each
    /// listed cluster (`cluster`) instead of one KSA. Broad: the plan marks
    /// it, and `wi audit` reports it.
    pub principal_set: Option<Sp<PrincipalSetKind>>,
    /// Cluster names, `project/name`, `project/location/name`, group names, or `*` for all.
    #[schemars(length(min = 1))]
    pub clusters: SpList,
    /// Kubernetes namespace (not with `principalSet: cluster`).
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub namespace: Option<Sp<String>>,
    /// One Kubernetes service account name (or use `ksas`).
    pub ksa: Option<Sp<String>>,
    /// Several Kubernetes service account names (or use `ksa`).
    #[schemars(length(min = 1))]
    pub ksas: Option<SpList>,
    /// `create` (default): create the namespace and KSA if missing;
    /// `annotate`: only annotate an existing KSA.
    pub manage: Option<Sp<Manage>>,
    /// Risks this mapping knowingly accepts, each silencing one plan warning
    /// for this mapping only (the plan lists what was accepted):
    /// `identity-sameness` (other clusters of the project with this
    /// namespace and KSA get the same identity).
    #[schemars(with = "Option<Vec<AcceptedRisk>>")]
    pub accept: Option<SpList>,
}

/// Which principal set a direct-mode mapping grants its roles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalSetKind {
    /// Every KSA of the namespace, in every cluster of the pool.
    Namespace,
    /// Every KSA of each listed cluster.
    Cluster,
}

/// One direct role: `roles/NAME` alone (on the clusters' project), or a map
/// naming where it is granted.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRole {
    /// `roles/NAME`, `projects/P/roles/NAME` or `organizations/O/roles/NAME`.
    pub role: Sp<String>,
    /// Another project to grant it on.
    pub project: Option<Sp<String>>,
    /// A service account (a declared account's name or an email) to grant it on.
    pub service_account: Option<Sp<String>>,
}

impl Serialize for RawRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.project.is_none() && self.service_account.is_none() {
            return self.role.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("role", &self.role)?;
        if let Some(p) = &self.project {
            map.serialize_entry("project", p)?;
        }
        if let Some(sa) = &self.service_account {
            map.serialize_entry("serviceAccount", sa)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawRole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRole;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a role (`roles/NAME`) or a map `{role, project}` / `{role, serviceAccount}`",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawRole {
                    role: Sp::unspanned(v.to_owned()),
                    project: None,
                    service_account: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut role = None;
                let mut project = None;
                let mut service_account = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "role" => role = Some(map.next_value::<Sp<String>>()?),
                        "project" => project = Some(map.next_value::<Sp<String>>()?),
                        "serviceAccount" => {
                            service_account = Some(map.next_value::<Sp<String>>()?);
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["role", "project", "serviceAccount"],
                            ));
                        }
                    }
                }
                let role = role.ok_or_else(|| de::Error::missing_field("role"))?;
                Ok(RawRole {
                    role,
                    project,
                    service_account,
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for RawRole {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DirectRole".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let role = serde_json::json!({
            "type": "string",
            "pattern": "^(roles/|projects/[^/]+/roles/|organizations/[0-9]+/roles/)[A-Za-z0-9_.]+$"
        });
        schemars::json_schema!({
            "description": "A role on the clusters' project (`roles/NAME`), or on another project (`{role, project}`) or a service account (`{role, serviceAccount}`).",
            "oneOf": [
                role.clone(),
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["role"],
                    "properties": {
                        "role": role,
                        "project": { "type": "string", "pattern": "^[a-z][a-z0-9-]{4,28}[a-z0-9]$" },
                        "serviceAccount": { "type": "string" }
                    },
                    "not": { "required": ["project", "serviceAccount"] }
                }
            ]
        })
    }
}

/// A risk a mapping can accept, for the schema (validation checks the names
/// and suggests the closest).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum AcceptedRisk {
    /// Every cluster of the project (declared or not) with this namespace
    /// and KSA gets the same Google identity.
    IdentitySameness,
}

/// A member that must not be able to act as an account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Absent")]
pub struct RawAbsent {
    /// A declared account's name or any account's full email.
    pub service_account: Sp<String>,
    /// The IAM member, e.g. `serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]`.
    pub member: Sp<String>,
}
