//! A fast reader for the plain YAML specs are written in: block mappings and
//! lists, one-line flow `{...}` and `[...]`, plain and simply quoted scalars,
//! comments. It reads a 10,000-mapping spec several times faster than the
//! full YAML parser, which tracks every event for its diagnostics.
//!
//! It is only a first pass: anything outside that subset (anchors, aliases,
//! tags, block scalars, escapes, multi-line flow, tabs, non-ASCII text,
//! values whose YAML type is not plainly a string, ...) and any problem at
//! all makes it give up, and [`super::load`] reads the file again with
//! serde-saphyr, which reports the problem at its line. It never accepts a
//! file serde-saphyr would refuse, and what it reads is what serde-saphyr
//! reads (`tests/spec/subset.rs` compares the two models): values as
//! written, spans starting where serde-saphyr's start.

use std::ops::Range;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::raw::{RawSpec, SAPHYR_NEWTYPE, TOML_END, TOML_START, TOML_VALUE};

/// Deepest nesting read; serde-saphyr's budget allows 24 (see `load::yaml_options`).
const MAX_DEPTH: usize = 16;
/// Most nodes (keys included) read; below serde-saphyr's budget of 200,000.
const MAX_NODES: usize = 190_000;
/// Most entries of one mapping: more than any spec type has fields, so the
/// repeated-key check stays short.
const MAX_ENTRIES: usize = 32;

/// The spec in `src`, or `None` when the text is not in the subset or does
/// not deserialize (the full parser then says why).
pub(super) fn parse(src: &str) -> Option<RawSpec> {
    let mut reader = Reader {
        b: src.as_bytes(),
        src,
        pos: 0,
        nodes: 0,
        depth: 0,
    };
    let root = reader.document().ok()?;
    RawSpec::deserialize(NodeDe(&root)).ok()
}

/// The text is outside the subset (or wrong): read it with the full parser.
struct GiveUp;

type Read<T> = Result<T, GiveUp>;

enum Node<'s> {
    Scalar {
        text: &'s str,
        quoted: bool,
        span: Range<usize>,
    },
    Seq {
        items: Vec<Node<'s>>,
        span: Range<usize>,
    },
    Map {
        entries: Vec<(Node<'s>, Node<'s>)>,
        span: Range<usize>,
    },
}

impl<'s> Node<'s> {
    fn span(&self) -> &Range<usize> {
        match self {
            Node::Scalar { span, .. } | Node::Seq { span, .. } | Node::Map { span, .. } => span,
        }
    }

    /// A key's text (keys are scalars).
    fn key_text(&self) -> &'s str {
        match self {
            Node::Scalar { text, .. } => text,
            _ => "",
        }
    }
}

struct Reader<'s> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    nodes: usize,
    depth: usize,
}

impl<'s> Reader<'s> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn count_node(&mut self) -> Read<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(GiveUp);
        }
        Ok(())
    }

    fn enter(&mut self) -> Read<()> {
        self.count_node()?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        Ok(())
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Whether only spaces and a comment are left on the line.
    fn at_line_end(&self) -> bool {
        match self.peek() {
            None | Some(b'\n') => true,
            // A comment starts a line or follows a space.
            Some(b'#') => self.pos == 0 || matches!(self.b[self.pos - 1], b' ' | b'\n'),
            _ => false,
        }
    }

    /// Skips the rest of the line (spaces, a comment) and its newline.
    fn end_line(&mut self) -> Read<()> {
        self.skip_spaces();
        if !self.at_line_end() {
            return Err(GiveUp);
        }
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == b'\n' {
                break;
            }
        }
        Ok(())
    }

    /// From a line start, skips blank and comment lines; the indentation of
    /// the next line with content (left at its start), or `None` at the end.
    fn next_content_line(&mut self) -> Read<Option<usize>> {
        loop {
            let line = self.pos;
            let mut i = line;
            while self.at(i) == Some(b' ') {
                i += 1;
            }
            match self.at(i) {
                None => {
                    self.pos = i;
                    return Ok(None);
                }
                Some(b'\n') => self.pos = i + 1,
                Some(b'#') => {
                    self.pos = i;
                    self.end_line()?;
                }
                Some(b'\t' | b'\r') => return Err(GiveUp),
                Some(_) => {
                    self.pos = line;
                    return Ok(Some(i - line));
                }
            }
        }
    }

    /// Whether a `- ` list item starts `indent` columns into the current line.
    fn item_at(&self, indent: usize) -> bool {
        self.at(self.pos + indent) == Some(b'-')
            && matches!(self.at(self.pos + indent + 1), None | Some(b' ' | b'\n'))
    }

    fn document(&mut self) -> Read<Node<'s>> {
        if self.src.starts_with('\u{feff}') {
            return Err(GiveUp);
        }
        let Some(0) = self.next_content_line()? else {
            return Err(GiveUp);
        };
        let root = self.block_node(0)?;
        if self.next_content_line()?.is_some() {
            return Err(GiveUp);
        }
        Ok(root)
    }

    /// A block mapping or list whose first line is indented `indent`
    /// (the reader at that line's start).
    fn block_node(&mut self, indent: usize) -> Read<Node<'s>> {
        if self.item_at(indent) {
            self.pos += indent;
            self.block_seq(indent)
        } else {
            self.pos += indent;
            self.block_map(indent)
        }
    }

    /// A block mapping whose keys sit at column `indent`, the reader at the first key.
    fn block_map(&mut self, indent: usize) -> Read<Node<'s>> {
        self.enter()?;
        let start = self.pos;
        let mut entries: Vec<(Node<'s>, Node<'s>)> = Vec::new();
        loop {
            let key = self.scalar(false)?;
            if self.peek() != Some(b':')
                || !matches!(self.at(self.pos + 1), None | Some(b' ' | b'\n'))
            {
                return Err(GiveUp);
            }
            self.pos += 1;
            if entries.len() >= MAX_ENTRIES
                || entries.iter().any(|(k, _)| k.key_text() == key.key_text())
            {
                return Err(GiveUp);
            }
            self.skip_spaces();
            let value = if self.at_line_end() {
                self.end_line()?;
                let at = self.pos;
                match self.next_content_line()? {
                    Some(i) if i > indent => self.block_node(i)?,
                    Some(i) if i == indent && self.item_at(i) => {
                        self.pos += i;
                        self.block_seq(indent)?
                    }
                    _ => self.null(at)?,
                }
            } else {
                let v = self.inline_value()?;
                self.end_line()?;
                v
            };
            entries.push((key, value));
            match self.next_content_line()? {
                Some(i) if i == indent && !self.item_at(i) => self.pos += i,
                Some(i) if i > indent => return Err(GiveUp),
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(Node::Map {
            entries,
            span: start..start + 1,
        })
    }

    /// A block list whose `-` sit at column `indent`, the reader at the first `-`.
    fn block_seq(&mut self, indent: usize) -> Read<Node<'s>> {
        self.enter()?;
        let start = self.pos;
        let mut items = Vec::new();
        loop {
            let dash = self.pos;
            self.pos += 1;
            if self.peek() != Some(b' ') {
                return Err(GiveUp);
            }
            self.skip_spaces();
            if self.at_line_end() {
                return Err(GiveUp);
            }
            let column = indent + (self.pos - dash);
            let item = match self.peek() {
                Some(b'[' | b'{') => {
                    let v = self.flow()?;
                    self.end_line()?;
                    v
                }
                _ => {
                    let at = self.pos;
                    let nodes = self.nodes;
                    let v = self.scalar(false)?;
                    if self.peek() == Some(b':')
                        && matches!(self.at(self.pos + 1), None | Some(b' ' | b'\n'))
                    {
                        // `- key: value`: a mapping whose keys sit at `column`.
                        self.pos = at;
                        self.nodes = nodes;
                        self.block_map(column)?
                    } else {
                        self.end_line()?;
                        v
                    }
                }
            };
            items.push(item);
            match self.next_content_line()? {
                Some(i) if i == indent && self.item_at(i) => self.pos += i,
                Some(i) if i > indent => return Err(GiveUp),
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(Node::Seq {
            items,
            span: start..start + 1,
        })
    }

    /// An empty value (`key:` with nothing after it): null.
    fn null(&mut self, at: usize) -> Read<Node<'s>> {
        self.count_node()?;
        Ok(Node::Scalar {
            text: "",
            quoted: false,
            span: at..at,
        })
    }

    /// The value after `key: ` on the same line.
    fn inline_value(&mut self) -> Read<Node<'s>> {
        match self.peek() {
            Some(b'[' | b'{') => self.flow(),
            _ => self.scalar(false),
        }
    }

    /// A one-line flow list or mapping, the reader at its bracket.
    fn flow(&mut self) -> Read<Node<'s>> {
        self.enter()?;
        let start = self.pos;
        let open = self.peek();
        self.pos += 1;
        self.skip_spaces();
        let node = if open == Some(b'[') {
            let mut items = Vec::new();
            if self.peek() == Some(b']') {
                self.pos += 1;
            } else {
                loop {
                    let item = self.flow_value()?;
                    self.skip_spaces();
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            self.skip_spaces();
                            if self.peek() == Some(b']') {
                                return Err(GiveUp);
                            }
                        }
                        Some(b']') => {
                            self.pos += 1;
                            items.push(item);
                            break;
                        }
                        _ => return Err(GiveUp),
                    }
                    items.push(item);
                }
            }
            Node::Seq {
                items,
                span: start..self.pos,
            }
        } else {
            let mut entries: Vec<(Node<'s>, Node<'s>)> = Vec::new();
            if self.peek() == Some(b'}') {
                self.pos += 1;
            } else {
                loop {
                    let key = self.scalar(true)?;
                    if self.peek() != Some(b':') || self.at(self.pos + 1) != Some(b' ') {
                        return Err(GiveUp);
                    }
                    self.pos += 1;
                    self.skip_spaces();
                    if matches!(self.peek(), Some(b',' | b'}')) {
                        return Err(GiveUp);
                    }
                    let value = self.flow_value()?;
                    if entries.len() >= MAX_ENTRIES
                        || entries.iter().any(|(k, _)| k.key_text() == key.key_text())
                    {
                        return Err(GiveUp);
                    }
                    entries.push((key, value));
                    self.skip_spaces();
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            self.skip_spaces();
                            if self.peek() == Some(b'}') {
                                return Err(GiveUp);
                            }
                        }
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(GiveUp),
                    }
                }
            }
            Node::Map {
                entries,
                span: start..self.pos,
            }
        };
        self.depth -= 1;
        Ok(node)
    }

    /// An item of a flow list or a value of a flow mapping.
    fn flow_value(&mut self) -> Read<Node<'s>> {
        match self.peek() {
            Some(b'[' | b'{') => self.flow(),
            _ => {
                let v = self.scalar(true)?;
                // `[a: b]` is a one-pair mapping in a list: not in the subset.
                if self.peek() == Some(b':') {
                    return Err(GiveUp);
                }
                Ok(v)
            }
        }
    }

    /// A plain or quoted scalar on one line; `flow` inside `[...]` / `{...}`.
    fn scalar(&mut self, flow: bool) -> Read<Node<'s>> {
        self.count_node()?;
        let start = self.pos;
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let mut i = start + 1;
                loop {
                    match self.at(i) {
                        Some(c) if c == q => break,
                        // Escapes, `''` and line breaks are left to the full parser.
                        None | Some(b'\\' | b'\n' | b'\r' | b'\t') => return Err(GiveUp),
                        Some(c) if !c.is_ascii() || c.is_ascii_control() => return Err(GiveUp),
                        Some(_) => i += 1,
                    }
                }
                if self.at(i + 1) == Some(q) {
                    return Err(GiveUp);
                }
                self.pos = i + 1;
                Ok(Node::Scalar {
                    text: &self.src[start + 1..i],
                    quoted: true,
                    span: start..i + 1,
                })
            }
            Some(c) if c.is_ascii_alphanumeric() => {
                let mut end = start + 1;
                let mut i = start + 1;
                loop {
                    match self.at(i) {
                        None | Some(b'\n') => break,
                        Some(b' ') => {
                            i += 1;
                            if self.at(i) == Some(b'#') {
                                break;
                            }
                            continue;
                        }
                        Some(b':') => match self.at(i + 1) {
                            None | Some(b' ' | b'\n') => break,
                            Some(b',' | b'[' | b']' | b'{' | b'}') if flow => return Err(GiveUp),
                            _ => {}
                        },
                        Some(b',' | b'[' | b']' | b'{' | b'}') if flow => break,
                        Some(b'{' | b'}') => return Err(GiveUp),
                        Some(c) if !c.is_ascii() || c.is_ascii_control() => return Err(GiveUp),
                        Some(_) => {}
                    }
                    i += 1;
                    end = i;
                }
                self.pos = end;
                Ok(Node::Scalar {
                    text: &self.src[start..end],
                    quoted: false,
                    span: start..end,
                })
            }
            _ => Err(GiveUp),
        }
    }
}

/// What a plain scalar is in YAML's core schema, as far as the subset needs to know.
#[derive(PartialEq)]
enum Plain {
    Null,
    Bool(bool),
    /// A decimal integer without sign or leading zero.
    Unsigned(u64),
    /// Text that no schema reads as anything but a string.
    Text,
    /// Anything else (other numbers, `yes`, `on`, ...): left to the full parser.
    Unclear,
}

fn classify(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" => return Plain::Bool(true),
        "false" => return Plain::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() {
        if text.bytes().all(|c| c.is_ascii_digit()) && (first != b'0' || text.len() == 1) {
            return text.parse().map_or(Plain::Unclear, Plain::Unsigned);
        }
        // `123-compute@developer.gserviceaccount.com` is no number in any schema.
        if text.contains(['@', '/']) {
            return Plain::Text;
        }
        return Plain::Unclear;
    }
    let words = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    if text.len() <= 5 && words.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        return Plain::Unclear;
    }
    Plain::Text
}

type Error = de::value::Error;

fn give_up<T>() -> Result<T, Error> {
    Err(de::Error::custom("outside the YAML subset"))
}

/// Deserializes [`RawSpec`] from a node, the way serde-saphyr would.
struct NodeDe<'n, 's>(&'n Node<'s>);

impl<'n, 's> NodeDe<'n, 's> {
    /// The scalar's text when it is a string (quoted, or plain text).
    fn string(&self) -> Result<&'s str, Error> {
        match self.0 {
            Node::Scalar { text, quoted, .. } if *quoted || classify(text) == Plain::Text => {
                Ok(*text)
            }
            _ => give_up(),
        }
    }

    fn unsigned(&self) -> Result<u64, Error> {
        match self.0 {
            Node::Scalar {
                text,
                quoted: false,
                ..
            } => match classify(text) {
                Plain::Unsigned(n) => Ok(n),
                _ => give_up(),
            },
            _ => give_up(),
        }
    }
}

macro_rules! unsigned {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_u64(self.unsigned()?)
        })*
    };
}

macro_rules! refused {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
            give_up()
        })*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Scalar {
                text, quoted: true, ..
            } => visitor.visit_str(text),
            Node::Scalar { text, .. } => match classify(text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Unsigned(n) => visitor.visit_u64(n),
                Plain::Text => visitor.visit_str(text),
                Plain::Unclear => give_up(),
            },
            Node::Seq { items, .. } => visitor.visit_seq(Items(items.iter())),
            Node::Map { entries, .. } => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Scalar {
                text,
                quoted: false,
                ..
            } => match classify(text) {
                Plain::Bool(b) => visitor.visit_bool(b),
                _ => give_up(),
            },
            _ => give_up(),
        }
    }

    unsigned!(deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64);

    refused!(deserialize_i128 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_bytes deserialize_byte_buf deserialize_unit);

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.string()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Scalar {
                text,
                quoted: false,
                ..
            } if classify(text) == Plain::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        give_up()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SAPHYR_NEWTYPE {
            visitor.visit_newtype_struct(SpannedDe(self.0))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Seq { items, .. } => visitor.visit_seq(Items(items.iter())),
            _ => give_up(),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        give_up()
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        give_up()
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Map { entries, .. } => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
            _ => give_up(),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let text: &str = self.string()?;
        visitor.visit_enum(text.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.string()?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Items<'n, 's>(std::slice::Iter<'n, Node<'s>>);

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|n| seed.deserialize(NodeDe(n)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'n, 's> {
    entries: std::slice::Iter<'n, (Node<'s>, Node<'s>)>,
    value: Option<&'n Node<'s>>,
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(NodeDe(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(NodeDe(v)),
            None => give_up(),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What [`super::raw::Sp`] asks for: the node with its span, handed over the
/// way toml's spanned values are (`start`, `end`, `value`).
struct SpannedDe<'n, 's>(&'n Node<'s>);

impl<'de> Deserializer<'de> for SpannedDe<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(SpanFields {
            node: self.0,
            state: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpanFields<'n, 's> {
    node: &'n Node<'s>,
    state: u8,
}

impl<'de> MapAccess<'de> for SpanFields<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.state {
            0 => TOML_START,
            1 => TOML_END,
            2 => TOML_VALUE,
            _ => return Ok(None),
        };
        self.state += 1;
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let span = self.node.span();
        match self.state {
            1 => seed.deserialize((span.start as u64).into_deserializer()),
            2 => seed.deserialize((span.end as u64).into_deserializer()),
            _ => seed.deserialize(NodeDe(self.node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(src: &str) -> bool {
        parse(src).is_some()
    }

    #[test]
    fn the_plain_subset_is_read_and_the_rest_left_to_the_full_parser() {
        let plain = "version: 1\n# comment\nclusters:\n- name: a\n  project: proj-a # here\n  location: us-central1\n  groups: [g1, \"g2\"]\nmappings:\n  - {serviceAccount: x@proj-a.iam.gserviceaccount.com, clusters: ['a'], namespace: ns, ksa: k}\n";
        assert!(reads(plain));
        for outside in [
            "version: 1\nowner: &a team\n",
            "version: 1\nowner: !!str team\n",
            "version: 1\nowner: \"te\\x41m\"\n",
            "version: 1\nowner: |\n  team\n",
            "version: 1\nowner: te\n  am\n",
            "version: 1\nowner:\tteam\n",
            "version: 1\r\nowner: team\r\n",
            "---\nversion: 1\n",
            "version: 1\nowner: yes\n",
            "version: 1\nowner: 0x1f\n",
            "version: 1\nprojects: [a,\n  b]\n",
            "version: 1\nversion: 1\n",
            "version: 1\nowner: équipe\n",
            "version: 1\nclusters: [{name: a, name: b}]\n",
        ] {
            assert!(!reads(outside), "read {outside:?}");
        }
    }

    #[test]
    fn spans_start_at_the_value() {
        let src = "version: 1\nowner: team-a\n";
        let raw = parse(src).expect("in the subset");
        let owner = raw.owner.expect("owner");
        assert_eq!(owner.span, Some(18..24));
        assert_eq!(&src[18..24], "team-a");
    }
}
