//! DMARC aggregate reports as a receiver would mail them, for tests: the XML gzipped or
//! zipped, attached to a message.

use std::io::Write;

use base64::Engine;

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A zip archive holding `bytes` as the file `name` (deflated).
pub fn zip(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(bytes.len() > u32::MAX as usize / 2);
    archive.start_file(name, options).expect("zip in memory");
    archive.write_all(bytes).expect("zip in memory");
    archive.finish().expect("zip in memory").into_inner()
}

/// A report mail from `from` with `attachment` as the file `file_name` of type
/// `content_type` (base64, lines of 76).
pub fn mail(
    from: &str,
    subject: &str,
    file_name: &str,
    content_type: &str,
    attachment: &[u8],
) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "From: {from}\nTo: dmarc\nSubject: {subject}\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"R\"\n\n--R\nContent-Type: text/plain\n\n\
         This is an aggregate report.\n--R\nContent-Type: {content_type}; name=\"{file_name}\"\n\
         Content-Disposition: attachment; filename=\"{file_name}\"\nContent-Transfer-Encoding: base64\n\n\
         {}\n--R--\n",
        lines.join("\n")
    )
}
