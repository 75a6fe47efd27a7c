//! ELF loading: the loading plan (`kernel_host::elf::plan`) the runtime's loader carries out,
//! on arbitrary file contents. Besides never panicking, a plan must keep the promises the
//! loader's unchecked arithmetic relies on (segments inside the reserved span, no overflow at
//! any load bias), and the kernel's `execve` check (`kernel_host::binfmt`) must agree with
//! the loader on what the file is and which interpreter it names.

#![no_main]

use kernel_host::abi::PAGE_SIZE;
use kernel_host::binfmt::{self, Format};
use kernel_host::elf::{self, Plan, MAX_SPAN};
use libfuzzer_sys::fuzz_target;

/// Highest user address on x86_64 with 5-level paging: no mapping ends above it.
const USER_TOP: u64 = 1 << 56;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(binfmt::HEAD_LEN)];
    let format = binfmt::format_of(head);
    if let Format::Script(s) = &format {
        assert!(!s.interpreter.is_empty() && !s.interpreter.contains(&b'\n'));
    }
    let plan = elf::plan(|buf: &mut [u8], offset| {
        let start = usize::try_from(offset).map_err(|_| ())?;
        let src = data.get(start..start.checked_add(buf.len()).ok_or(())?).ok_or(())?;
        buf.copy_from_slice(src);
        Ok::<(), ()>(())
    }, data.len() as u64);
    let Ok(plan) = plan else { return };
    assert_eq!(format, Format::Elf, "the loader takes a file execve's check calls {format:?}");
    check(&plan, data.len() as u64);
    // With its headers and interpreter path in the part execve reads, the kernel looks for the
    // interpreter the loader will load.
    if data.len() <= 4096 && plan.phnum <= 64 {
        let expected = plan.interp.as_ref().map(|p| &p[..p.len() - 1]);
        assert_eq!(binfmt::interpreter(data).as_deref(), expected);
    }
});

/// The plan's promises, and the loader's arithmetic at the lowest and highest bias it can get.
fn check(plan: &Plan, file_len: u64) {
    let page = |x: u64| x.is_multiple_of(PAGE_SIZE);
    assert!(page(plan.lo) && page(plan.hi) && plan.lo < plan.hi && plan.hi - plan.lo <= MAX_SPAN);
    assert!((plan.lo..plan.hi).contains(&plan.entry));
    assert!(!plan.segments.is_empty());
    for pair in plan.segments.windows(2) {
        assert!(pair[0].vaddr + pair[0].memsz <= pair[1].vaddr, "segments overlap: {pair:?}");
    }
    if let Some(interp) = &plan.interp {
        assert!(interp.len() >= 2 && interp.iter().position(|&b| b == 0) == Some(interp.len() - 1));
    }
    let span = plan.hi - plan.lo;
    // Where the loader's reservation can land: a fixed image at its own address; a
    // position-independent one anywhere from the first page to the top of user space. The
    // loader adds the bias with wrapping arithmetic; this computes the same addresses from `at`.
    let places: &[u64] = if plan.position_independent { &[PAGE_SIZE, USER_TOP - span] } else { &[plan.lo] };
    for &at in places {
        let end = at + span;
        for s in &plan.segments {
            assert!(s.filesz <= s.memsz && s.vaddr % PAGE_SIZE == s.offset % PAGE_SIZE);
            // Only a segment with file bytes maps the file.
            let in_file = s.offset.checked_add(s.filesz).is_some_and(|e| e <= file_len);
            assert!(s.filesz == 0 || in_file, "{s:?} past the file");
            // As loader.rs's map_segment computes them, each checked.
            let page_off = s.vaddr % PAGE_SIZE;
            assert!(s.offset >= page_off);
            let rel = s.vaddr.checked_sub(plan.lo).expect("segment below the image");
            let map_start = at + rel - page_off;
            let mem_end = rel.checked_add(s.memsz).and_then(|e| e.checked_add(at)).expect("end overflows");
            let mem_end = mem_end.checked_add(PAGE_SIZE - 1).expect("page_up overflows") & !(PAGE_SIZE - 1);
            assert!(map_start >= at && mem_end <= end, "{s:?} maps outside [{at:#x}, {end:#x})");
        }
    }
}
