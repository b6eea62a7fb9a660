//! Keeping the daemon's resident memory small: fewer malloc arenas, and
//! dropping the page-table entries of code that only ran at startup.
//!
//! Neither changes behaviour; both only matter for a long-lived PID 1 whose
//! `VmRSS` is watched.

/// Let every thread allocate from at most `ARENAS` malloc arenas.
///
/// Why: glibc gives each new thread its own arena (up to 8 per core), and
/// each arena keeps a few pages resident. The daemon's threads allocate
/// little and rarely, so sharing one arena costs no measurable contention.
/// Must run before any thread exists.
pub(crate) fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    {
        const ARENAS: libc::c_int = 1;
        // SAFETY: mallopt takes two integers and only tunes the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
}

/// Unmap (from this process's page tables only) the read-only segments of
/// the binary and its shared libraries, once startup is over.
///
/// What this is: a way to make `VmRSS` show the idle working set instead of
/// everything startup touched. The kernel's fault-around maps 64 KiB of
/// page cache around every page-fault in a file mapping (on this kernel
/// `MADV_RANDOM` does not turn it off), so config parsing, the first fork
/// and so on leave nearly the whole of libc and of tend mapped. After
/// `MADV_DONTNEED` the pages stay in the page cache, shared with every other
/// process; the ones the daemon still uses come back with a minor fault.
///
/// What this is not: it frees no memory the system could not reclaim anyway
/// (clean page cache), and `RssFile` grows again with every code path used.
///
/// Why it is safe: only `PT_LOAD` segments without `PF_W` are touched, in
/// objects without text relocations, so no page there was ever written (or
/// copied-on-write): dropping one loses nothing. The vDSO is skipped.
/// (Breakpoints a debugger or a uprobe wrote into tend's code *before* this
/// runs, in the first moments of startup, are dropped with their pages;
/// those set afterwards are not affected.)
pub(crate) fn release_startup_pages() {
    // The walk below reads 64-bit ELF structures.
    #[cfg(target_pointer_width = "64")]
    {
        // SAFETY: the callback only reads the program headers dl_iterate_phdr
        // hands it; madvise only drops clean page-table entries (see above).
        unsafe { libc::dl_iterate_phdr(Some(release_object), std::ptr::null_mut()) };
    }
}

#[cfg(target_pointer_width = "64")]
/// `dl_iterate_phdr` callback: release one loaded object's read-only segments.
unsafe extern "C" fn release_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    _data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info whose dlpi_phdr points at
    // dlpi_phnum program headers of a mapped object.
    let (base, headers) = unsafe {
        let info = &*info;
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
        (info.dlpi_addr as usize, headers)
    };
    // SAFETY: getauxval has no preconditions.
    let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    // SAFETY: base and the headers describe a mapped object (see above).
    if base == vdso || unsafe { has_text_relocations(base, headers) } {
        return 0;
    }
    for ph in headers {
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W == 0 {
            release_range(base + ph.p_vaddr as usize, ph.p_memsz as usize);
        }
    }
    0
}

#[cfg(target_pointer_width = "64")]
/// Whether an object's dynamic section asks for relocations in read-only
/// segments, which would have written (and copied) some of their pages.
///
/// # Safety
///
/// `base` and `headers` must describe an object mapped in this process.
unsafe fn has_text_relocations(base: usize, headers: &[libc::Elf64_Phdr]) -> bool {
    const DT_NULL: i64 = 0;
    const DT_TEXTREL: i64 = 22;
    const DT_FLAGS: i64 = 30;
    const DF_TEXTREL: u64 = 0x4;
    let Some(dynamic) = headers.iter().find(|ph| ph.p_type == libc::PT_DYNAMIC) else {
        return false;
    };
    let mut entry = (base + dynamic.p_vaddr as usize) as *const [u64; 2];
    loop {
        // SAFETY: PT_DYNAMIC points at a DT_NULL-terminated array of
        // (tag, value) pairs inside the mapped object.
        let [tag, value] = unsafe { entry.read() };
        match tag as i64 {
            DT_NULL => return false,
            DT_TEXTREL => return true,
            DT_FLAGS if value & DF_TEXTREL != 0 => return true,
            _ => {}
        }
        // SAFETY: not past DT_NULL yet, so the next entry is in the array.
        entry = unsafe { entry.add(1) };
    }
}

#[cfg(target_pointer_width = "64")]
/// `MADV_DONTNEED` on the whole pages inside `[start, start + len)`.
fn release_range(start: usize, len: usize) {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let first = start.div_ceil(page).saturating_mul(page);
    let end = start.saturating_add(len) / page * page;
    if end > first {
        // SAFETY: the range lies inside a read-only, never-written file
        // mapping of this process; dropping its entries loses no data.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    /// Pointers: relocated at load time, so their pages were written.
    static RELOCATED: &[&str] = &["relocated", "pointers"];

    #[test]
    fn releasing_pages_loses_no_written_data() {
        WRITTEN.store(0x5eed, Ordering::SeqCst);
        let heap = vec![7u8; 1 << 16];
        release_startup_pages();
        // Twice: the second walk runs on code the first one released.
        release_startup_pages();
        assert_eq!(WRITTEN.load(Ordering::SeqCst), 0x5eed);
        assert_eq!(RELOCATED.join(" "), "relocated pointers");
        assert!(heap.iter().all(|&b| b == 7));
        assert_eq!(format!("{:?}", Some(42)), "Some(42)");
    }

    #[test]
    fn one_arena_still_allocates_from_many_threads() {
        limit_malloc_arenas();
        let sums: Vec<usize> = (0..4)
            .map(|i| std::thread::spawn(move || vec![i; 1000].iter().sum::<usize>()))
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(sums, vec![0, 1000, 2000, 3000]);
    }
}
