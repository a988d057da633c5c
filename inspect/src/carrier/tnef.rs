//! A small, bounded TNEF reader: the names of the attachments in a `winmail.dat`.
//!
//! TNEF (MS-OXTNEF) is a signature, a key, then attributes: level (1 message, 2
//! attachment), a 32-bit id, a 32-bit length, the data and a 16-bit checksum. Attachment
//! names are in `attAttachTitle` (8-bit string) and, for long names, in the MAPI property
//! `PR_ATTACH_LONG_FILENAME` inside `attAttachment`. The one crate found (`tnef` 0.1.1, "a
//! basic TNEF parser") is an early 0.1 release; only names are needed here, so this small
//! reader reads just those and never panics: every length is checked against what is
//! left. No I/O here.

/// TNEF signature, little-endian.
const SIGNATURE: u32 = 0x223E_9F78;
/// attAttachTitle (0x0001_8010): the attachment's (short) file name. Attributes are told
/// apart by the low 16 bits of their id, as readers do (the high 16 bits name the data
/// type, and a reader that ignores them still reads the attribute: fuzz finding).
const ATT_ATTACH_TITLE: u16 = 0x8010;
/// attAttachTransportFilename (0x0001_9001): the name the attachment was sent under.
const ATT_ATTACH_TRANSPORT_FILENAME: u16 = 0x9001;
/// attAttachment (0x0006_9005): the attachment's MAPI properties.
const ATT_ATTACHMENT: u16 = 0x9005;
/// MAPI property ids a reader may show or save a file under: PR_ATTACH_LONG_FILENAME,
/// PR_ATTACH_FILENAME, PR_DISPLAY_NAME, PR_ATTACH_EXTENSION, PR_ATTACH_PATHNAME,
/// PR_ATTACH_LONG_PATHNAME.
const NAME_PROPS: [u16; 6] = [0x3707, 0x3704, 0x3001, 0x3703, 0x3708, 0x370D];
/// Attributes read at most (a real winmail.dat has a few dozen).
const MAX_ATTRIBUTES: usize = 100_000;

/// Why a TNEF body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TnefError {
    /// The body does not start with the TNEF signature.
    #[error("not a TNEF stream")]
    NoSignature,
    /// An attribute runs past the end of the body.
    #[error("TNEF attribute truncated at byte {offset}")]
    Truncated {
        /// Where the attribute starts.
        offset: usize,
    },
    /// An attachment's MAPI property list cannot be read to its end.
    #[error("TNEF attachment properties unreadable at byte {offset}")]
    Properties {
        /// Where the attribute starts.
        offset: usize,
    },
    /// More attributes than any real TNEF stream has.
    #[error("too many TNEF attributes")]
    TooManyAttributes,
}

/// The attachment names in a TNEF stream.
pub(crate) fn attachment_names(data: &[u8]) -> Result<Vec<String>, TnefError> {
    let mut reader = Reader { data, at: 0 };
    if reader.u32() != Some(SIGNATURE) {
        return Err(TnefError::NoSignature);
    }
    reader.u16().ok_or(TnefError::Truncated { offset: 4 })?;
    let mut names = Vec::new();
    let mut count = 0;
    while reader.at < data.len() {
        count += 1;
        if count > MAX_ATTRIBUTES {
            return Err(TnefError::TooManyAttributes);
        }
        let offset = reader.at;
        let truncated = TnefError::Truncated { offset };
        // The level byte (1 message, 2 attachment) is not checked: the two attributes read
        // exist only for attachments, and a reader may not check it either.
        reader.u8().ok_or(truncated)?;
        let id = reader.u32().ok_or(truncated)?;
        let len = reader.u32().ok_or(truncated)? as usize;
        let value = reader.take(len).ok_or(truncated)?;
        reader.u16().ok_or(truncated)?;
        match id as u16 {
            ATT_ATTACH_TITLE | ATT_ATTACH_TRANSPORT_FILENAME => names.push(c_string(value)),
            // A property list that cannot be read whole may hide a name another reader
            // finds (fuzz finding): the container is damaged, not empty.
            ATT_ATTACHMENT => {
                names.extend(mapi_names(value).ok_or(TnefError::Properties { offset })?);
                names.extend(embedded_names(value));
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    Ok(names)
}

/// String values of the name properties in a MAPI property list; `None` when one of the
/// properties it declares cannot be read.
fn mapi_names(data: &[u8]) -> Option<Vec<String>> {
    let mut reader = Reader { data, at: 0 };
    let mut names = Vec::new();
    let count = reader.u32()?;
    if count > 10_000 {
        return None;
    }
    for _ in 0..count {
        let kind = reader.u16()?;
        let id = reader.u16()?;
        if id >= 0x8000 {
            reader.skip_named_property()?;
        }
        let multi = kind & 0x1000 != 0;
        let base = kind & !0x1000;
        let values = if multi || matches!(base, 0x1E | 0x1F | 0x102 | 0x0D) {
            reader.u32()?
        } else {
            1
        };
        if values > 10_000 {
            return None;
        }
        for _ in 0..values {
            let value = match base {
                0x02 | 0x03 | 0x04 | 0x0A | 0x0B => reader.take(4),
                0x05 | 0x06 | 0x07 | 0x14 | 0x40 => reader.take(8),
                0x48 => reader.take(16),
                0x1E | 0x1F | 0x102 | 0x0D => reader.u32().and_then(|len| {
                    let value = reader.take(len as usize)?;
                    reader.take((4 - len as usize % 4) % 4)?;
                    Some(value)
                }),
                _ => None,
            };
            let value = value?;
            let texts = match base {
                0x1E => [Some(c_string(value)), None],
                0x1F => {
                    let wide = utf16_string(value);
                    let narrow = narrowed_utf16_string(value);
                    [Some(wide.clone()), (narrow != wide).then_some(narrow)]
                }
                _ => continue,
            };
            for text in texts.into_iter().flatten() {
                // Another string property that reads as a file name counts too: readers
                // differ in what they show and save (fuzz finding: a name in
                // PR_ATTACH_CONTENT_BASE).
                if NAME_PROPS.contains(&id) || looks_like_file_name(&text) {
                    names.push(text);
                }
            }
        }
    }
    Some(names)
}

/// Every string in a property list's raw bytes that reads as a file name, whatever the
/// property's declared type or place: 8-bit text up to a zero byte, and UTF-16 text read
/// as its low bytes at either alignment. A reader that keys on a property id and not its
/// type, or that scans the list for names, finds these too.
fn embedded_names(list: &[u8]) -> Vec<String> {
    let even: Vec<u8> = list.iter().step_by(2).copied().collect();
    let odd: Vec<u8> = list.iter().skip(1).step_by(2).copied().collect();
    [list, &even, &odd]
        .into_iter()
        .flat_map(|bytes| bytes.split(|&b| b == 0))
        .filter(|piece| piece.len() > 1)
        .map(|piece| piece.iter().map(|&b| char::from(b)).collect::<String>())
        .filter(|text| looks_like_file_name(text))
        .collect()
}

/// Whether `text` ends in a file extension (a dot and 1 to 8 letters or digits), as a name
/// does and a MIME type, a content id or a date does not.
fn looks_like_file_name(text: &str) -> bool {
    let trimmed = text.trim_end_matches(|c: char| c == '\0' || c.is_whitespace());
    trimmed.rsplit_once('.').is_some_and(|(_, ext)| {
        (1..=8).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    // Windows code page bytes: Latin-1 keeps every ASCII extension visible.
    bytes[..end].iter().map(|&b| char::from(b)).collect()
}

fn utf16_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// A UTF-16 string as a reader that keeps each unit's low byte reads it (up to the first
/// zero byte): `report.scr` followed by U+1E00 is `report.scr\0` there (fuzz finding).
fn narrowed_utf16_string(bytes: &[u8]) -> String {
    bytes
        .chunks_exact(2)
        .map(|c| c[0])
        .take_while(|&b| b != 0)
        .map(char::from)
        .collect()
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let bytes = self.data.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A named property's GUID and name (MS-OXTNEF 2.1.3.5).
    fn skip_named_property(&mut self) -> Option<()> {
        self.take(16)?;
        match self.u32()? {
            0 => self.take(4).map(|_| ()),
            _ => {
                let len = self.u32()? as usize;
                self.take(len)?;
                self.take((4 - len % 4) % 4).map(|_| ())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal TNEF stream with one attachment titled `title` and, if given, a long
    /// file name property.
    pub(crate) fn sample(title: &str, long_name: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&SIGNATURE.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        let mut attribute = |level: u8, id: u32, data: &[u8]| {
            out.push(level);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            let sum: u32 = data.iter().map(|&b| u32::from(b)).sum();
            out.extend_from_slice(&(sum as u16).to_le_bytes());
        };
        attribute(1, 0x0009_8008, b"IPM.Note\0");
        let mut title_bytes = title.as_bytes().to_vec();
        title_bytes.push(0);
        attribute(2, 0x0001_8010, &title_bytes);
        if let Some(long) = long_name {
            let mut props = Vec::new();
            props.extend_from_slice(&2u32.to_le_bytes());
            // PT_LONG 0x0E21 (attach number) = 1
            props.extend_from_slice(&0x0003u16.to_le_bytes());
            props.extend_from_slice(&0x0E21u16.to_le_bytes());
            props.extend_from_slice(&1u32.to_le_bytes());
            // PT_UNICODE PR_ATTACH_LONG_FILENAME
            props.extend_from_slice(&0x001Fu16.to_le_bytes());
            props.extend_from_slice(&0x3707u16.to_le_bytes());
            props.extend_from_slice(&1u32.to_le_bytes());
            let mut text: Vec<u8> = long.encode_utf16().flat_map(u16::to_le_bytes).collect();
            text.extend_from_slice(&[0, 0]);
            props.extend_from_slice(&(text.len() as u32).to_le_bytes());
            let pad = (4 - text.len() % 4) % 4;
            props.extend_from_slice(&text);
            props.extend(std::iter::repeat_n(0u8, pad));
            attribute(2, 0x0006_9005, &props);
        }
        out
    }

    #[test]
    fn title_and_long_name_are_read() {
        let data = sample("EVIL~1.EXE", Some("evil document.exe"));
        assert_eq!(
            attachment_names(&data),
            Ok(vec![
                "EVIL~1.EXE".to_owned(),
                "evil document.exe".to_owned()
            ])
        );
    }

    #[test]
    fn attributes_are_known_by_the_low_half_of_their_id_at_any_level() {
        let mut data = sample("REPORT~1.DOC", Some("report.scr"));
        // attAttachment's data-type half and level changed: a reader keyed on 0x9005 and
        // not on the level still lists the name.
        let at = data
            .windows(4)
            .position(|w| w == 0x0006_9005u32.to_le_bytes())
            .unwrap();
        data[at + 3] = 0x0c;
        data[at - 1] = 7;
        let names = attachment_names(&data).unwrap();
        assert!(names.contains(&"report.scr".to_owned()), "{names:?}");
    }

    #[test]
    fn names_anywhere_in_a_property_list_count_whatever_their_type() {
        let mut data = sample("a.txt", Some("b.exe"));
        // PR_ATTACH_LONG_FILENAME declared binary (0x0102): readers keyed on the id read it.
        let tag = [0x1F, 0x00, 0x07, 0x37];
        let at = data.windows(4).position(|w| w == tag).unwrap();
        data[at..at + 2].copy_from_slice(&0x0102u16.to_le_bytes());
        let names = attachment_names(&data).unwrap();
        assert!(names.contains(&"b.exe".to_owned()), "{names:?}");
    }

    #[test]
    fn a_wide_name_is_also_read_as_its_low_bytes() {
        // U+1E00 after the extension: its low byte ends the name for a narrowing reader.
        let data = sample("REPORT~1.DOC", Some("report 2026.scr\u{1e00}"));
        let names = attachment_names(&data).unwrap();
        assert!(names.contains(&"report 2026.scr".to_owned()), "{names:?}");
    }

    #[test]
    fn truncated_and_foreign_input_is_an_error_not_a_panic() {
        let data = sample("a.exe", Some("b.exe"));
        for cut in 0..data.len() {
            let _ = attachment_names(&data[..cut]);
        }
        assert_eq!(attachment_names(b"hello"), Err(TnefError::NoSignature));
        assert!(matches!(
            attachment_names(&data[..data.len() - 3]),
            Err(TnefError::Truncated { .. })
        ));
    }

    #[test]
    fn other_string_properties_count_when_they_read_as_file_names() {
        assert!(looks_like_file_name("report 2026.scr"));
        assert!(looks_like_file_name("http://host/evil.exe\0"));
        for other in ["application/pdf", "<part1.abc@x>", "IPM.Note.", "plain"] {
            assert!(!looks_like_file_name(other), "{other}");
        }
        // A name may be all extension: Windows opens `.scr` as a screen saver.
        assert!(looks_like_file_name(".scr"));
        // A name moved to another property id is still found.
        let mut data = sample("a.txt", Some("b.exe"));
        let tag = [0x1F, 0x00, 0x07, 0x37];
        let at = data.windows(4).position(|w| w == tag).unwrap();
        data[at + 2..at + 4].copy_from_slice(&0x3711u16.to_le_bytes());
        assert!(attachment_names(&data)
            .unwrap()
            .contains(&"b.exe".to_owned()));
    }

    #[test]
    fn an_unreadable_property_list_is_damage_not_an_empty_list() {
        let mut data = sample("a.txt", Some("b.exe"));
        let tag = [0x1F, 0x00, 0x07, 0x37];
        let at = data.windows(4).position(|w| w == tag).unwrap() + 4;
        // The long name's value count now promises more values than the list holds.
        data[at..at + 4].copy_from_slice(&200u32.to_le_bytes());
        assert!(matches!(
            attachment_names(&data),
            Err(TnefError::Properties { .. })
        ));
    }
}
