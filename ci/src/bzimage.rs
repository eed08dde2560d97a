//! Reading an x86 bzImage: its version string and its compressed payload,
//! the vmlinux ELF that QEMU boots directly through the PVH entry point.
//! Under TCG that skips the guest's own decompression (about 4 s for xz).
//! Layout: Documentation/arch/x86/boot.rst (boot protocol 2.08+).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};

/// The real-mode header fields we read.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `setup_sects`: the protected-mode kernel starts at `(setup_sects + 1) * 512`.
    pub setup_sects: usize,
    /// Boot protocol version, e.g. 0x020f.
    pub protocol: u16,
    /// `payload_offset`, relative to the protected-mode kernel.
    pub payload_offset: usize,
    /// `payload_length`, including the 4-byte decompressed size at its end.
    pub payload_length: usize,
    /// `kernel_version`: "6.1.0-56-amd64 (debian-kernel@...) #1 SMP ...".
    pub version: String,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).context("bzImage too short")?.try_into()?))
}

fn u32_at(b: &[u8], at: usize) -> Result<usize> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).context("bzImage too short")?.try_into()?) as usize)
}

/// Parses the setup header of a bzImage.
pub fn header(image: &[u8]) -> Result<Header> {
    ensure!(image.get(0x202..0x206) == Some(b"HdrS"), "not a bzImage: no \"HdrS\" magic at 0x202");
    let protocol = u16_at(image, 0x206)?;
    ensure!(protocol >= 0x208, "boot protocol {protocol:#x} predates payload_offset (2.08)");
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let version_at = u16_at(image, 0x20e)? as usize + 0x200;
    let version = image
        .get(version_at..)
        .map(|s| String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap_or(0).min(256)]).into_owned())
        .unwrap_or_default();
    Ok(Header { setup_sects, protocol, payload_offset: u32_at(image, 0x248)?, payload_length: u32_at(image, 0x24c)?, version })
}

/// `uname -r` of a bzImage: the first word of its version string.
pub fn release(image: &[u8]) -> Result<String> {
    let h = header(image)?;
    h.version.split_whitespace().next().map(str::to_string).context("bzImage has an empty kernel_version string")
}

/// The decompressor for a payload, by its magic bytes.
fn decompressor(payload: &[u8]) -> Result<&'static [&'static str]> {
    Ok(match payload {
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => &["xz", "-dc", "--single-stream"],
        [0x28, 0xb5, 0x2f, 0xfd, ..] => &["zstd", "-dcq"],
        [0x1f, 0x8b, ..] => &["gzip", "-dc"],
        [a, b, c, d, ..] => bail!("payload compression {a:02x}{b:02x}{c:02x}{d:02x} is not xz, zstd or gzip"),
        _ => bail!("empty payload"),
    })
}

/// Writes the uncompressed vmlinux ELF inside `image` to `out`, using the
/// xz, zstd or gzip command.
pub fn extract_vmlinux(image: &[u8], out: &Path) -> Result<()> {
    let h = header(image)?;
    let start = (h.setup_sects + 1) * 512 + h.payload_offset;
    // The last 4 bytes are the decompressed size (mkpiggy), not compressed data.
    let payload = image.get(start..start + h.payload_length.saturating_sub(4)).context("payload runs past the end of the bzImage")?;
    let argv = decompressor(payload)?;
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} (install it: apt-get install xz-utils zstd gzip)", argv[0]))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(payload));
        let out = child.wait_with_output();
        (writer.join(), out)
    });
    let output = written.1?;
    ensure!(output.status.success(), "{} failed ({}): {}", argv.join(" "), output.status, String::from_utf8_lossy(&output.stderr).trim());
    if let Ok(Err(e)) = written.0 {
        bail!("feeding the payload to {}: {e}", argv[0]);
    }
    let mut magic = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(out)?.read_exact(&mut magic).context("decompressed payload is empty")?;
    ensure!(&magic == b"\x7fELF", "decompressed payload is not an ELF file");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(setup_sects: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; (setup_sects as usize + 1) * 512];
        b[0x1f1] = setup_sects;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        b[0x300..0x316].copy_from_slice(b"6.1.0-56-amd64 (x) #1\0");
        b[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&(payload.len() as u32 + 4).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(payload);
        b.extend_from_slice(&7u32.to_le_bytes());
        b
    }

    #[test]
    fn header_fields_and_release() {
        let img = fake(30, b"\x1f\x8bxx");
        let h = header(&img).unwrap();
        assert_eq!((h.setup_sects, h.protocol, h.payload_offset, h.payload_length), (30, 0x20f, 16, 8));
        assert_eq!(release(&img).unwrap(), "6.1.0-56-amd64");
        assert!(header(b"MZ not a kernel").is_err());
    }

    #[test]
    fn gzip_payload_round_trips() {
        let elf = b"\x7fELF and the rest of a kernel";
        let gz = Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut c| {
            c.stdin.take().unwrap().write_all(elf)?;
            c.wait_with_output()
        });
        let Ok(gz) = gz else { return }; // no gzip on this host
        let dir = std::env::temp_dir().join(format!("nsverify-bzimage-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("vmlinux");
        extract_vmlinux(&fake(4, &gz.stdout), &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), elf);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_compression_is_named() {
        let err = extract_vmlinux(&fake(4, b"\x02\x21\x4c\x18lz4"), Path::new("/nonexistent/x")).unwrap_err();
        assert!(err.to_string().contains("02214c18"), "{err}");
    }
}
