//! Files carried inside a part rather than as a part of their own (SPEC §4, "Carriers"):
//! uuencoded blocks in text parts and the attachments of a TNEF (`winmail.dat`) part.
//! Their names are matched by the `file_names` rules; a strip of a carried file strips the
//! carrying part. No I/O here.

mod tnef;
mod uuencode;

pub(crate) use tnef::{attachment_names as tnef_names, TnefError};
pub(crate) use uuencode::begin_names as uuencode_names;

/// Whether a part of this content type and these names is a TNEF container. Any type
/// naming TNEF counts, not only `application/(vnd.)ms-tnef`: a reader that keys on the
/// subtype opens `x-foo/ms-tnef` too, and listing more carriers only makes popgate
/// stricter (fuzz finding: `applisation/vnd.ms-tnef`).
pub(crate) fn is_tnef(content_type: &str, names: &[String]) -> bool {
    content_type.to_ascii_lowercase().contains("tnef")
        || names.iter().any(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// Whether uuencoded files in a part of this content type are shown by clients: text parts
/// (a part without a usable type is text/plain).
pub(crate) fn may_hold_uuencode(content_type: &str) -> bool {
    content_type.starts_with("text/")
}
