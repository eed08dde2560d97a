//! Builds the independent floor (`floor/floor.c`, issue 14) with the target's
//! C compiler, -O2, into `$OUT_DIR/nsverify-floor`, which the bench embeds
//! with `include_bytes!`. The compiler is `$CC_<target>`, else `$TARGET_CC`,
//! else, for a native build only, `$CC` or `cc`: a cross build without a
//! compiler named for its target gets no floor rather than a floor for the
//! wrong machine.
//!
//! The floor is linked the way the bench itself is, so that both measure
//! from processes of the same shape: fork copies every mapping of the
//! parent, and setns into a time namespace walks them all, so a static
//! floor forks about 1.6x faster here than any dynamically linked process
//! (benches/README.md, "The floor"). A bench built with `crt-static` gets a
//! static floor; otherwise the floor is dynamic and loads the shared
//! libraries a Rust executable loads (libc, libm, libgcc_s), else only libc,
//! with its symbols bound at start (`-z now`), as rustc links: with the
//! C compiler's default lazy binding every forked child would run the
//! dynamic linker to resolve `_exit`, some 30 µs per clone here.
//! How it was linked reaches the bench as `NSVERIFY_FLOOR_LINK`. Without a
//! working compiler the file is left empty and the bench reports the floor
//! as not built (a warning here).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=floor/floor.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=TARGET_CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("nsverify-floor");
    let (target, host) = (std::env::var("TARGET").unwrap_or_default(), std::env::var("HOST").unwrap_or_default());
    let target_cc = format!("CC_{}", target.replace('-', "_"));
    println!("cargo:rerun-if-env-changed={target_cc}");
    let cc = match std::env::var(&target_cc).or_else(|_| std::env::var("TARGET_CC")) {
        Ok(cc) => cc,
        Err(_) if target == host => std::env::var("CC").unwrap_or_else(|_| "cc".into()),
        Err(_) => return not_built(&out, &format!("a cross build for {target} names no C compiler ({target_cc} or TARGET_CC)")),
    };
    // musl executables are static whether or not cargo lists crt-static.
    let static_bench = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl")
        || std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    let links: &[(&str, &[&str])] = if static_bench {
        &[("static, as the bench", &["-static"])]
    } else {
        &[
            ("dynamic, bound now, libc libm libgcc_s, as the bench", &["-Wl,-z,relro,-z,now", "-Wl,--no-as-needed", "-lm", "-lgcc_s"]),
            ("dynamic, bound now, libc only (libm or libgcc_s missing)", &["-Wl,-z,relro,-z,now"]),
        ]
    };
    let mut errors = Vec::new();
    for (how, link) in links {
        let result = Command::new(&cc).args(["-O2", "-std=gnu11", "-Wall", "-o"]).arg(&out).arg("floor/floor.c").args(*link).output();
        match result {
            Ok(o) if o.status.success() => {
                println!("cargo:rustc-env=NSVERIFY_FLOOR_LINK={how}");
                return;
            }
            Ok(o) => errors.push(format!("{cc} {link:?}: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => errors.push(format!("{cc}: {e}")),
        }
    }
    not_built(&out, &errors.join("; ").replace('\n', " "));
}

/// Leaves an empty floor (the bench then reports it as not built) and says why.
fn not_built(out: &std::path::Path, why: &str) {
    println!("cargo:warning=the floor (benches/floor/floor.c) was not built: {why}");
    println!("cargo:rustc-env=NSVERIFY_FLOOR_LINK=not built");
    std::fs::write(out, b"").expect("writing an empty floor");
}
