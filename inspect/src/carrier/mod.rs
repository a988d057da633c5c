//! Files carried inside a part rather than as a part of their own (SPEC §4, "Carriers"):
//! uuencoded blocks in text parts and the attachments of a TNEF (`winmail.dat`) part.
//! Their names are matched by the `file_names` rules; a strip of a carried file strips the
//! carrying part. No I/O here.

mod tnef;
mod uuencode;

pub(crate) use tnef::{attachment_names as tnef_names, TnefError};
pub(crate) use uuencode::begin_names as uuencode_names;

/// Whether a part of this content type and these names is a TNEF container.
pub(crate) fn is_tnef(content_type: &str, names: &[String]) -> bool {
    matches!(
        content_type,
        "application/ms-tnef" | "application/vnd.ms-tnef"
    ) || names.iter().any(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// Whether uuencoded files in a part of this content type are shown by clients: text parts
/// (a part without a usable type is text/plain).
pub(crate) fn may_hold_uuencode(content_type: &str) -> bool {
    content_type.starts_with("text/")
}
