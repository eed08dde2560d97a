//! ioctl(2) request numbers as `<asm-generic/ioctl.h>` encodes them (x86,
//! arm64 and most architectures): direction (2 bits from bit 30), argument
//! size (14 bits from bit 16), type (8 bits from bit 8) and number.

/// `_IOC_NONE`: no argument memory.
pub const IOC_NONE: u64 = 0;
/// `_IOC_WRITE`: the caller writes the argument (the kernel reads it).
pub const IOC_WRITE: u64 = 1;
/// `_IOC_READ`: the caller reads the argument (the kernel writes it).
pub const IOC_READ: u64 = 2;

/// `_IOC(dir, ty, nr, size)`.
pub const fn ioc(dir: u64, ty: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (ty << 8) | nr
}

/// `_IO(ty, nr)`.
pub const fn io(ty: u64, nr: u64) -> u64 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(ty, nr, size)`.
pub const fn ior(ty: u64, nr: u64, size: u64) -> u64 {
    ioc(IOC_READ, ty, nr, size)
}

/// The fields of a request (`_IOC_DIR`, `_IOC_TYPE`, `_IOC_NR`,
/// `_IOC_SIZE`), and whether it fits the 32-bit `cmd` the kernel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// `_IOC_DIR`.
    pub dir: u64,
    /// `_IOC_TYPE`.
    pub ty: u64,
    /// `_IOC_NR`.
    pub nr: u64,
    /// `_IOC_SIZE`.
    pub size: u64,
    /// No bit above 31 is set.
    pub fits: bool,
}

/// Decodes `request`.
pub const fn fields(request: u64) -> Fields {
    Fields {
        dir: (request >> 30) & 3,
        ty: (request >> 8) & 0xff,
        nr: request & 0xff,
        size: (request >> 16) & 0x3fff,
        fits: request >> 32 == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_uapi_headers() {
        // NS_GET_ID of <linux/nsfs.h>: _IOR(0xb7, 13, __u64).
        assert_eq!(ior(0xb7, 13, 8), 0x8008_b70d);
        // PIDFD_GET_INFO of <linux/pidfd.h>: _IOWR(0xFF, 11, struct pidfd_info).
        assert_eq!(ioc(IOC_READ | IOC_WRITE, 0xff, 11, 64), 0xc040_ff0b);
        assert_eq!(io(0xb7, 1), 0xb701);
        let f = fields(0xc040_ff0b);
        assert_eq!((f.dir, f.ty, f.nr, f.size, f.fits), (3, 0xff, 11, 64, true));
        assert!(!fields(1 << 32).fits);
    }
}
