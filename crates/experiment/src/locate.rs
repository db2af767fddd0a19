//! Where a key sits in an experiment file: the line of a key given by its full path
//! (`quant.mixed.bits`, `models[2].width`), from the TOML parser's spans, so that every
//! config error points at the offending line, in nested tables and in the second and later
//! `[[models]]` entries alike.

use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An array element (e.g. the n-th `[[models]]`).
    Index(usize),
}

/// Follows `path` from `root` as far as it goes: the span of the last step found (the key,
/// or the array element), the value there, and whether every step was found.
fn walk<'a, 'i>(root: &'a DeTable<'i>, path: &[Seg]) -> (Option<Range<usize>>, Option<&'a DeValue<'i>>, bool) {
    let (mut span, mut value): (Option<Range<usize>>, Option<&DeValue>) = (None, None);
    for seg in path {
        let step = match (*seg, value) {
            (Seg::Key(k), None | Some(DeValue::Table(_))) => {
                let t = match value {
                    Some(DeValue::Table(t)) => t,
                    _ => root,
                };
                t.iter().find(|(key, _)| key.get_ref().as_ref() == k).map(|(key, v)| (key.span(), v.get_ref()))
            }
            (Seg::Index(i), Some(DeValue::Array(a))) => a.get(i).map(|v| (v.span(), v.get_ref())),
            _ => None,
        };
        let Some((s, v)) = step else { return (span, value, false) };
        (span, value) = (Some(s), Some(v));
    }
    (span, value, true)
}

/// The span of the deepest part of `path` present in `text`: the key itself if it is there,
/// else the nearest enclosing entry (e.g. the `[[models]]` entry of a defaulted key).
/// `None` if the text does not parse or not even the first step is present.
pub fn span_of(text: &str, path: &[Seg]) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    walk(root.get_ref(), path).0
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    (before.matches('\n').count() + 1, before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
}

/// The 1-based line of `path` in `text` (1 if it cannot be found).
pub fn line_of(text: &str, path: &[Seg]) -> usize {
    span_of(text, path).map_or(1, |s| line_col(text, s.start).0)
}

/// Within the table at `path`, the span of the first key named `token` or whose value's
/// text is `token` or has it as an array element (e.g. `-3` from serde's "invalid value:
/// integer `-3`", or `hiden` from "unknown field `hiden`").
pub fn find_in(text: &str, path: &[Seg], token: &str) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let table = match walk(root.get_ref(), path) {
        (_, None, true) => root.get_ref(),
        (_, Some(DeValue::Table(t)), true) => t,
        _ => return None,
    };
    let matches = |s: &str| s.trim() == token || s.split(['[', ']', ',']).any(|p| p.trim() == token);
    let hit = |(k, v): &(&toml::Spanned<_>, &toml::Spanned<DeValue>)| {
        k.get_ref() == token || text.get(v.span()).is_some_and(matches)
    };
    table.iter().find(hit).map(|(k, _)| k.span())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Seg::{Index, Key};

    const TEXT: &str = "name = \"x\"\nbits = [4]\n\n[[models]]\nkind = \"mlp\"\n\n[[models]]\nkind = \"res-mlp\"\nwidth = 0\n\n[quant]\nbits = [8]\n\n[quant.mixed]\nbits = [2, 33]\n";

    // The `[[models]]` header of the second entry.
    const ENTRY_LINE: usize = 7;

    #[test]
    fn keys_are_found_by_their_full_path() {
        assert_eq!(line_of(TEXT, &[Key("bits")]), 2);
        assert_eq!(line_of(TEXT, &[Key("quant"), Key("bits")]), 12);
        assert_eq!(line_of(TEXT, &[Key("quant"), Key("mixed"), Key("bits")]), 15);
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("width")]), 9);
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("kind")]), 8);
        // A defaulted key falls back to its entry.
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("depth")]), ENTRY_LINE);
        assert_eq!(line_of("not toml [", &[Key("x")]), 1);
    }

    #[test]
    fn values_are_found_by_their_text() {
        let s = find_in(TEXT, &[Key("models"), Index(1)], "0").unwrap();
        assert_eq!(line_col(TEXT, s.start), (9, 1));
    }
}
