# Generates the evasion corpus (hostile *.eml and control_*.eml) in the current directory.
# Run from inspect/tests/evasion: python3 make_corpus.py. The files are checked in; this
# script documents how each was built.
import base64, struct, os
CRLF = "\r\n"
HEAD = "From: Mallory <mallory@example.org>\r\nTo: bob@example.net\r\nSubject: {subj}\r\nMessage-ID: <{subj}@example.org>\r\nMIME-Version: 1.0\r\n"
EXE_B64 = base64.b64encode(b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode").decode()

def msg(subj, body_headers, body):
    return HEAD.format(subj=subj) + body_headers + CRLF + body

def mixed(subj, parts, boundary="XYZ", close=True, extra_ct="", preamble="This is a multi-part message.\r\n"):
    out = preamble
    for p in parts:
        out += "--" + boundary + CRLF + p + CRLF
    if close:
        out += "--" + boundary + "--" + CRLF
    return msg(subj, 'Content-Type: multipart/mixed; boundary="%s"%s\r\n' % (boundary, extra_ct), out)

TEXT = "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob, see attached."
def exe_part(name_hdrs):
    return name_hdrs + "Content-Transfer-Encoding: base64\r\n\r\n" + EXE_B64

def tnef(title, long_name=None, attach_id=0x00069005, prop_type=0x001F, wide_end=b"\0\0"):
    out = struct.pack("<IH", 0x223E9F78, 1)
    def attr(level, aid, data):
        nonlocal out
        out += struct.pack("<BII", level, aid, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    attr(1, 0x00098008, b"IPM.Microsoft Mail.Note\0")
    attr(2, 0x00018010, title.encode("latin-1") + b"\0")
    if long_name:
        text = long_name.encode("utf-16-le") + wide_end
        props = struct.pack("<I", 1) + struct.pack("<HH", prop_type, 0x3707) + struct.pack("<II", 1, len(text)) + text + b"\0" * ((4 - len(text) % 4) % 4)
        attr(2, attach_id, props)
    attr(2, 0x0006800F, b"MZ\x90\x00")
    return base64.b64encode(out).decode()

def b64lines(data):
    s = base64.b64encode(data).decode()
    return CRLF.join(s[i:i+76] for i in range(0, len(s), 76))

cases = {}
H = {}
# 1-2 mid-line boundaries
cases["midline_close"] = mixed("midline_close", [TEXT + "\r\nxx--XYZ--", exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\nContent-Disposition: attachment; filename="evil.exe"\r\n')])
cases["midline_open"] = mixed("midline_open", ["Content-Type: text/plain\r\n\r\nsee below: --XYZ\r\nContent-Type: application/x-msdownload; name=\"evil.exe\"\r\n\r\nMZ"])
cases["boundary_with_text"] = mixed("boundary_with_text", ["Content-Type: text/plain\r\n\r\nhello\r\n--XYZfoo\r\nContent-Type: application/x-msdownload; name=\"evil.exe\"\r\n\r\nMZ"])
cases["boundary_padding"] = mixed("boundary_padding", [TEXT]) .replace("--XYZ--", "--XYZ  \t\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--XYZ--")
# duplicate fields
ct_mp = 'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
body_parts = "--XYZ\r\n" + TEXT + "\r\n--XYZ\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\nContent-Disposition: attachment; filename="evil.exe"\r\n') + "\r\n--XYZ--\r\n"
cases["dup_ct_top_multipart_then_text"] = msg("dup_ct_top1", ct_mp + "Content-Type: text/plain\r\n", body_parts)
cases["dup_ct_top_text_then_multipart"] = msg("dup_ct_top2", "Content-Type: text/plain\r\n" + ct_mp, body_parts)
cases["dup_cd_attachment_then_inline"] = mixed("dup_cd1", [TEXT, "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"evil.exe\"\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n" + EXE_B64])
cases["dup_cd_inline_then_attachment"] = mixed("dup_cd2", [TEXT, "Content-Type: application/octet-stream\r\nContent-Disposition: inline\r\nContent-Disposition: attachment; filename=\"evil.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + EXE_B64])
cases["dup_ct_msdownload_then_text"] = mixed("dup_ct3", [TEXT, "Content-Type: application/x-msdownload; name=\"evil.exe\"\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + EXE_B64])
cases["dup_ct_text_then_msdownload"] = mixed("dup_ct4", [TEXT, "Content-Type: text/plain\r\nContent-Type: application/x-msdownload\r\nContent-Transfer-Encoding: base64\r\n\r\n" + EXE_B64])
inner_exe = ("From: x@y\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\n" + TEXT + "\r\n--IN\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--IN--\r\n").encode()
cases["dup_cte_message"] = mixed("dup_cte", [TEXT, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + b64lines(inner_exe)])
cases["dup_ct_message_then_text"] = mixed("dup_ct5", [TEXT, "Content-Type: message/rfc822\r\nContent-Type: text/plain\r\n\r\n" + inner_exe.decode()])
cases["repeated_name_param"] = mixed("repeated_name", [TEXT, exe_part('Content-Type: application/octet-stream; name="a.txt"; name="evil.exe"\r\n')])
cases["repeated_boundary_param"] = msg("repeated_boundary", 'Content-Type: multipart/mixed; boundary="AAA"; boundary="XYZ"\r\n', body_parts)
# names
def named(subj, params):
    return mixed(subj, [TEXT, exe_part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; " + params + "\r\n")])
cases["name_tab"] = named("name_tab", 'filename="evil.exe\t"')
cases["name_rfc2231_nul"] = named("name_nul", "filename*=utf-8''evil.exe%00.txt")
# a Latin-1 label on UTF-8 bytes: read as UTF-8, the name ends in a no-break space (trimmed)
cases["name_rfc2231_charset_ignored"] = named("name_charset", "filename*=iso-8859-1''evil.exe%C2%A0")
cases["name_rfc2231_continuation"] = named("name_cont", 'filename*0="ev"; filename*1="il.e"; filename*2="xe"')
cases["name_rfc2231_continuation_encoded"] = named("name_cont_enc", "filename*0*=utf-8''%65vil; filename*1*=%2E%65xe")
cases["name_encoded_word_b"] = named("name_ew_b", 'filename="=?utf-8?B?ZXZpbC5leGU=?="')
cases["name_encoded_word_q"] = named("name_ew_q", 'filename="=?iso-8859-1?Q?evil=2Eexe?="')
cases["name_encoded_words_split"] = named("name_ew_split", 'filename="=?utf-8?q?ev?= =?utf-8?q?il.scr?="')
cases["name_bidi_trailing_rlo"] = named("name_bidi", 'filename*=utf-8\'\'evil.exe%E2%80%AE')
cases["name_zero_width"] = named("name_zw", "filename*=utf-8''evil.e%E2%80%8Bxe")
cases["name_path_windows"] = named("name_path_win", 'filename="C:\\\\temp\\\\evil.exe"')
cases["name_path_trailing_dots"] = named("name_dots", 'filename="evil.exe. . ."')
cases["name_in_content_type_only"] = mixed("name_ct_only", [TEXT, exe_part('Content-Type: application/octet-stream; name="screen.SCR"\r\n')])
cases["name_unquoted"] = named("name_unquoted", "filename=evil.exe;size=4")
cases["name_quoted_escape"] = named("name_escape", 'filename="evil\\.exe"')
cases["name_8bit_header"] = named("name_8bit", 'filename="\u00e9vil.exe"')
cases["name_uppercase"] = named("name_upper", 'filename="EVIL.EXE"')
# carriers
uu = "begin 644 evil.exe\r\nM35J0\r\n`\r\nend\r\n"
cases["uuencode_in_text"] = mixed("uu_text", ["Content-Type: text/plain\r\n\r\nHere it is:\r\n\r\n" + uu])
# indented, with a no-break space: readers that split the line into words find the file
cases["uuencode_indented"] = mixed("uu_indented", ["Content-Type: text/plain; charset=utf-8\r\n\r\nHere it is:\r\n\r\n \t\u00a0" + uu])
cases["uuencode_single_part"] = msg("uu_single", "Content-Type: text/plain\r\n", "Here it is:\r\n" + uu)
cases["uuencode_in_base64_text"] = mixed("uu_b64", ["Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64lines(("Here:\r\n" + uu).encode())])
cases["uuencode_in_qp_text"] = mixed("uu_qp", ["Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHere:\r\n=62egin 644 evil.scr\r\nM35J0\r\n`\r\nend\r\n"])
cases["tnef_title"] = mixed("tnef_title", [TEXT, "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + tnef("EVIL.EXE")])
cases["tnef_long_name"] = mixed("tnef_long", [TEXT, "Content-Type: application/vnd.ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n" + tnef("REPORT~1.DOC", "report 2026.scr")])
# TNEF names only a lenient TNEF reader sees (fuzz findings): U+1E00 after the name (a
# low-byte reader stops at its zero byte), attAttachment's data-type half changed (readers key
# on 0x9005), the long name declared binary (readers key on the property id)
TNEF_CT = "Content-Type: application/vnd.ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n"
cases["tnef_wide_name_low_byte"] = mixed("tnef_low_byte", [TEXT, TNEF_CT + tnef("REPORT~1.DOC", "report 2026.scr", wide_end=b"\0\x1e")])
cases["tnef_attribute_type_changed"] = mixed("tnef_type", [TEXT, TNEF_CT + tnef("REPORT~1.DOC", "report 2026.scr", attach_id=0x0C069005)])
cases["tnef_binary_long_name"] = mixed("tnef_binary", [TEXT, TNEF_CT + tnef("REPORT~1.DOC", "report 2026.scr", prop_type=0x0102)])
# nesting
cases["nested_rfc822"] = mixed("nested", [TEXT, "Content-Type: message/rfc822\r\n\r\n" + inner_exe.decode()])
cases["nested_rfc822_base64"] = mixed("nested_b64", [TEXT, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64lines(inner_exe)])
cases["nested_rfc822_twice"] = mixed("nested2", [TEXT, "Content-Type: message/rfc822\r\n\r\nFrom: a@b\r\nSubject: mid\r\nContent-Type: message/rfc822\r\n\r\n" + inner_exe.decode()])
cases["digest_default_type"] = msg("digest", 'Content-Type: multipart/digest; boundary="D"\r\n', "--D\r\n\r\n" + inner_exe.decode() + "\r\n--D--\r\n")
cases["base64_junk_nested"] = mixed("b64junk", [TEXT, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + "!!" + b64lines(inner_exe).replace("\r\n", "*\r\n")])
cases["base64_junk_exe"] = mixed("b64junk_exe", [TEXT, "Content-Type: application/octet-stream; name=\"evil.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%%" + EXE_B64 + "##"])
# structure tricks
cases["bare_cr_before_delimiter"] = mixed("bare_cr", ["Content-Type: text/plain\r\n\r\nhello\r--XYZ\r\nContent-Type: application/x-msdownload; name=\"evil.exe\"\r\n\r\nMZ"])
cases["cr_only_lines"] = mixed("cr_only", [TEXT, exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n')]).replace("\r\n", "\r")
cases["lf_only"] = mixed("lf_only", [TEXT, exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n')]).replace("\r\n", "\n")
cases["mixed_line_endings"] = mixed("mixed_eol", [TEXT, exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n')]).replace("\r\n--XYZ\r\n", "\n--XYZ\n")
cases["boundary_prefix"] = msg("prefix", 'Content-Type: multipart/mixed; boundary="B"\r\n', "--B\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n--BB\r\n" + TEXT + "\r\n--BB\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--BB--\r\n--B--\r\n")
cases["unclosed_inner_multipart"] = msg("unclosed_inner", 'Content-Type: multipart/mixed; boundary="OUT"\r\n', "--OUT\r\nContent-Type: multipart/alternative; boundary=\"IN\"\r\n\r\n--IN\r\n" + TEXT + "\r\n--OUT\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--OUT--\r\n")
cases["close_in_preamble"] = msg("close_pre", 'Content-Type: multipart/mixed; boundary="XYZ"\r\n', "--XYZ--\r\n--XYZ\r\n" + TEXT + "\r\n--XYZ\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--XYZ--\r\n")
cases["top_level_msdownload"] = msg("top_exe", 'Content-Type: application/x-msdownload\r\nContent-Transfer-Encoding: base64\r\n', EXE_B64 + "\r\n")
cases["content_type_case_and_space"] = mixed("ct_case", [TEXT, "Content-Type:   APPLICATION/X-MSDownload ; foo=bar\r\nContent-Transfer-Encoding: base64\r\n\r\n" + EXE_B64])
# a boundary that starts with a vertical tab: line readers that trim it split at --XYZ (fuzz finding)
cases["boundary_vertical_tab"] = msg("boundary_vt", 'Content-Type: multipart/mixed; boundary="\x0bXYZ"\r\n', "--XYZ\r\n" + TEXT + "\r\n--XYZ\r\n" + exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n') + "\r\n--XYZ--\r\n")
# mail-parser reads `Con\rtent-Type:` as a Content-Type field (empty, so text); a line reader
# knows no such field and takes the multipart after it (fuzz finding; LF-only lines as found).
cases["content_type_name_with_cr"] = ("From: Mallory <mallory@example.org>\nSubject: ct_name_cr\nCon\rtent-Type:\n" + 'Content-Type: multipart/mixed; boundary="XYZ"\nContent-Type:\n\n' + "--XYZ\nContent-Type: text/plain\n\nhi\n--XYZ\n" + 'Content-Type: application/octet-stream; name="evil.exe"\n\n' + "MZ\n--XYZ--\n")
# A multipart/digest part without a Content-Type is a message/rfc822, which RFC 2046 allows
# no transfer encoding; ripmime reads this one's quoted-printable body as text and saves the
# uuencoded file, where popgate's readings took the decoded body for a nested message whose
# lines were all stray header lines (fuzz finding: a line without a colon first).
cases["digest_part_encoded_after_stray_line"] = msg("digest_stray_qp", 'Content-Type: multipart/digest; boundary="D"\r\n',
    "--D\r\nnot a field\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=62egin 644 evil.scr\r\n(35H@:&5L;&\\ \r\n`\r\nend\r\n--D--\r\n")
cases["missing_final_boundary_exe"] = mixed("missing_close_exe", [TEXT, exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\n')], close=False)

# Added with the relay test (not fuzz findings): which name wins when a part carries two.
# Python email keeps the quoted filename, reformime the RFC 2231 one, ripmime saves both.
cases["name_plain_and_rfc2231_conflict"] = mixed("name_2231_conflict", [TEXT, exe_part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"report.txt\"; filename*=utf-8''evil.exe\r\n")])
# Content-Disposition says report.pdf, Content-Type's name says evil.exe: ripmime saves evil.exe.
cases["name_disposition_and_type_differ"] = mixed("name_cd_ct_differ", [TEXT, exe_part('Content-Type: application/octet-stream; name="evil.exe"\r\nContent-Disposition: attachment; filename="report.pdf"\r\n')])
# An RFC 822 comment inside the media type: reformime drops it and reads x-msdownload.
cases["content_type_comment"] = mixed("ct_comment", [TEXT, exe_part("Content-Type: application/(comment)x-msdownload\r\n")])
# A line of one space in a part's header block: a folded continuation for RFC 5322 readers
# (so the fields after it belong to the header: evil.exe), the end of the header for others.
cases["whitespace_only_header_line"] = mixed("ws_header_line", [TEXT, exe_part('Content-Type: text/plain\r\n \r\nContent-Type: application/x-msdownload; name="evil.exe"\r\nContent-Disposition: attachment; filename="evil.exe"\r\n')])

controls = {}
PDF = b64lines(b"%PDF-1.4\n%fake\n" * 20)
controls["control_missing_final_boundary"] = mixed("c1", [TEXT, "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + PDF], close=False)
controls["control_missing_epilogue"] = mixed("c2", [TEXT, "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + PDF]).rstrip("\r\n")
PNG = b64lines(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
controls["control_html_inline_images"] = msg("c3", 'Content-Type: multipart/related; boundary="REL"; type="multipart/alternative"\r\n',
    "--REL\r\nContent-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n--ALT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello =E2=80=94 see the logo.\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello</p><img src=\"cid:logo@x\"></body></html>\r\n--ALT--\r\n\r\n--REL\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + PNG + "\r\n--REL--\r\n")
controls["control_signed"] = msg("c4", 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="SIG"\r\n',
    "This is an S/MIME signed message\r\n\r\n--SIG\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSigned text, begin here.\r\n\r\n--SIG\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n" + b64lines(b"\x30\x82\x01\x00" + b"\x01" * 100) + "\r\n\r\n--SIG--\r\n\r\n")
controls["control_alternative_epilogue"] = msg("c5", 'Content-Type: multipart/alternative; boundary="=_alt"\r\n',
    "--=_alt\r\nContent-Type: text/plain\r\n\r\nplain -- with dashes --\r\n-- \r\nsig\r\n--=_alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--=_alt--\r\nmailing list footer\r\n")
controls["control_uuencode_allowed"] = mixed("c6", ["Content-Type: text/plain\r\n\r\nbegin 644 notes.txt\r\nM35J0\r\n`\r\nend\r\n"])
controls["control_nested_pdf"] = mixed("c7", [TEXT, "Content-Type: message/rfc822\r\n\r\nFrom: x@y\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\n" + TEXT + "\r\n--IN\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + PDF + "\r\n--IN--\r\n"])

os.makedirs(".", exist_ok=True)
for name, text in list(cases.items()) + list(controls.items()):
    with open(name + ".eml", "wb") as f:
        f.write(text.encode("utf-8"))
print(len(cases), "hostile", len(controls), "controls")
