//! Builds the independent floor (`floor/floor.c`, issue 14) with the system
//! C compiler (`$CC`, else `cc`), -O2, static when the C library allows it
//! (else dynamic), into `$OUT_DIR/nsverify-floor`, which the bench embeds
//! with `include_bytes!`. Without a working compiler the file is left
//! empty and the bench reports the floor as not built (a warning here).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=floor/floor.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("nsverify-floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut errors = Vec::new();
    for link in [&["-static"][..], &[]] {
        let result = Command::new(&cc).args(["-O2", "-std=gnu11", "-Wall", "-o"]).arg(&out).arg("floor/floor.c").args(link).output();
        match result {
            Ok(o) if o.status.success() => return,
            Ok(o) => errors.push(format!("{cc} {link:?}: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => errors.push(format!("{cc}: {e}")),
        }
    }
    println!("cargo:warning=the floor (benches/floor/floor.c) was not built: {}", errors.join("; ").replace('\n', " "));
    std::fs::write(&out, b"").expect("writing an empty floor");
}
