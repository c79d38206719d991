//! berth's own pause image: what holds an awsvpc task's network namespace.
//!
//! ECS uses `amazon-ecs-pause`; berth pulls nothing, so it builds its own tiny image once per
//! host with `docker import` of a tarball holding one file, `/pause`: a static x86_64 ELF
//! assembled here, byte by byte (a build toolchain for a 200-byte program would be a heavier
//! dependency than the program). It installs a handler for SIGTERM and SIGINT that exits 0
//! (a PID 1 without a handler would ignore them, and `docker stop` would wait for its
//! SIGKILL), then loops on `pause()`.
//!
//! The image is `berth/pause:1` (the tag changes when the bytes do), labelled
//! `berth.managed=true`.

/// The pause image's name and tag.
pub(crate) const PAUSE_IMAGE: &str = "berth/pause:1";

/// Where the ELF is loaded (the conventional base of a static executable).
const BASE: u64 = 0x40_0000;
/// ELF header (64 bytes) and one program header (56 bytes) precede the code.
const CODE_OFFSET: u64 = 64 + 56;

/// The program: `rt_sigaction(SIGTERM)`, `rt_sigaction(SIGINT)`, then `pause()` forever; the
/// handler is `exit_group(0)`. Followed by the `struct sigaction` it installs. Offsets are
/// computed, not hand-counted: `code()` lays it out and patches the two references.
fn code() -> Vec<u8> {
    let mut c: Vec<u8> = Vec::new();
    let mut act_refs = Vec::new();
    for signal in [15u8, 2u8] {
        // lea rsi, [rip + act]
        c.extend_from_slice(&[0x48, 0x8d, 0x35]);
        act_refs.push(c.len());
        c.extend_from_slice(&[0, 0, 0, 0]);
        // mov edi, signal
        c.extend_from_slice(&[0xbf, signal, 0, 0, 0]);
        // xor edx, edx
        c.extend_from_slice(&[0x31, 0xd2]);
        // mov r10d, 8 (sizeof(sigset_t))
        c.extend_from_slice(&[0x41, 0xba, 8, 0, 0, 0]);
        // mov eax, 13 (rt_sigaction); syscall
        c.extend_from_slice(&[0xb8, 13, 0, 0, 0, 0x0f, 0x05]);
    }
    // loop: mov eax, 34 (pause); syscall; jmp loop
    c.extend_from_slice(&[0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    // handler: xor edi, edi; mov eax, 231 (exit_group); syscall
    let handler = BASE + CODE_OFFSET + c.len() as u64;
    c.extend_from_slice(&[0x31, 0xff, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]);
    // act: sa_handler, sa_flags (SA_RESTORER, required on x86_64), sa_restorer, sa_mask.
    // The handler never returns, so the restorer is never run.
    let act = c.len();
    c.extend_from_slice(&handler.to_le_bytes());
    c.extend_from_slice(&0x0400_0000u64.to_le_bytes());
    c.extend_from_slice(&handler.to_le_bytes());
    c.extend_from_slice(&0u64.to_le_bytes());
    for at in act_refs {
        // rip-relative: from the end of the 4-byte displacement.
        let rel = (act as i64 - (at as i64 + 4)) as i32;
        c[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    }
    c
}

/// The whole static ELF executable.
pub(crate) fn pause_elf() -> Vec<u8> {
    let code = code();
    let size = CODE_OFFSET + code.len() as u64;
    let mut e = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86-64
    e.extend_from_slice(&1u32.to_le_bytes()); // e_version
    e.extend_from_slice(&(BASE + CODE_OFFSET).to_le_bytes()); // e_entry
    e.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    e.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    e.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    e.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    e.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // The one PT_LOAD segment: the whole file, readable and executable.
    e.extend_from_slice(&1u32.to_le_bytes()); // p_type: LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R + X
    e.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    e.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    e.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    e.extend_from_slice(&size.to_le_bytes()); // p_filesz
    e.extend_from_slice(&size.to_le_bytes()); // p_memsz
    e.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    e.extend_from_slice(&code);
    e
}

/// A tar archive (ustar) holding one executable file `name` with `data`: what `docker
/// import` takes as a root filesystem.
pub(crate) fn tar_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o755); // mode
    octal(&mut h, 108, 8, 0); // uid
    octal(&mut h, 116, 8, 0); // gid
    octal(&mut h, 124, 12, data.len() as u64); // size
    octal(&mut h, 136, 12, 0); // mtime
    h[156] = b'0'; // a regular file
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    // Two zero blocks end the archive.
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_elf_is_well_formed() {
        let e = pause_elf();
        assert_eq!(&e[..4], b"\x7fELF");
        assert!(e.len() < 300, "{} bytes", e.len());
        let entry = u64::from_le_bytes(e[24..32].try_into().unwrap());
        assert_eq!(entry, BASE + CODE_OFFSET);
        let t = tar_one("pause", &e);
        assert_eq!(t.len() % 512, 0);
        assert_eq!(&t[257..262], b"ustar");
    }

    /// Runs the program (on x86_64 Linux): it stays up until SIGTERM, then exits 0.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn the_program_pauses_and_exits_on_sigterm() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, pause_elf()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        // Wait (with a deadline) until its SIGTERM handler is installed: bit 15 of SigCgt.
        let status_file = format!("/proc/{}/status", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = std::fs::read_to_string(&status_file).unwrap_or_default();
            let caught = s
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if caught & (1 << 14) != 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no handler: {s}");
            std::thread::yield_now();
        }
        assert!(child.try_wait().unwrap().is_none());
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert_eq!(exit.code(), Some(0));
    }
}
