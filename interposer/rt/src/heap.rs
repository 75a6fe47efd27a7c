//! The runtime's allocator: size classes carved from mmap'd chunks, one spin lock, and direct
//! mappings for large blocks. It never calls libc, so it is safe in a SIGSYS handler that
//! interrupted the program's own `malloc`. Fork takes the lock first ([`Heap::lock_for_fork`]).
//!
//! Every page of heap a start-up touches is a page fault in every new image, so the classes
//! are fine-grained (16-byte steps to 128, then four per power of two, as jemalloc has them): a
//! block wastes at most a fifth of itself, where powers of two gave a 2.2 KiB string 4 KiB. A
//! freed block goes back on its class's list, for the next block of that class. The block
//! carved last grows in place, so a vector that grows at the end of the heap leaves no copies
//! of itself behind.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use kernel_host::sync::SpinLock;

use crate::sys;

/// Size classes: 16, 32, ..., 128, then 160, 192, 224, 256, 320, ... up to 16384 bytes. (A
/// start-up grows a few vectors past 4 KiB: as blocks of their own, each would cost an `mmap`
/// and a `munmap` in every image.)
const CLASSES: usize = 8 + 7 * 4;
/// Blocks above the largest class are mapped on their own.
const MAX_SMALL: usize = 16384;
/// Bytes mapped at a time for small blocks.
const CHUNK: usize = 256 * 1024;
/// Alignment blocks are carved at, whatever their size.
const BLOCK_ALIGN: usize = 16;

struct State {
    free: [*mut u8; CLASSES],
    bump: *mut u8,
    bump_end: *mut u8,
    /// Whether the first chunk is handed out already.
    first_taken: bool,
}

/// The first chunk, in the runtime's own zero-filled data: the host's exec maps it with the
/// image, so a start-up that stays within it makes no `mmap` for its heap.
#[repr(align(16))]
struct Chunk(core::cell::UnsafeCell<[u8; CHUNK]>);

// SAFETY: the chunk is only reached through `State`, under the heap's lock.
unsafe impl Sync for Chunk {}

/// The global allocator. The first chunk lies right after the state, in the same static, so
/// that the state shares the chunk's first page: a static of its own would land wherever the
/// linker puts it, often a page of its own that every new image faults in.
#[repr(C)]
pub struct Heap {
    state: SpinLock<State>,
    first_chunk: Chunk,
}

// SAFETY: every access to the raw pointers inside goes through the spin lock.
unsafe impl Sync for Heap {}
// SAFETY: as above.
unsafe impl Send for State {}

impl Heap {
    /// An empty heap.
    pub const fn new() -> Self {
        Heap {
            state: SpinLock::new(State {
                free: [ptr::null_mut(); CLASSES],
                bump: ptr::null_mut(),
                bump_end: ptr::null_mut(),
                first_taken: false,
            }),
            first_chunk: Chunk(core::cell::UnsafeCell::new([0; CHUNK])),
        }
    }

    /// Takes the heap's lock before a fork.
    pub fn lock_for_fork(&self) {
        self.state.raw_lock();
    }

    /// Releases it after the fork, in parent and child.
    pub fn unlock_after_fork(&self) {
        self.state.raw_unlock();
    }
}

/// The class a request is served from: the smallest whose blocks hold it, or `None` for a
/// block mapped on its own.
fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1);
    if size > MAX_SMALL {
        return None;
    }
    if size <= 128 {
        return Some(size.div_ceil(16) - 1);
    }
    // 2^k < size <= 2^(k+1), in four steps of 2^(k-2).
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step = 1 << (k - 2);
    Some(8 + (k - 7) * 4 + (size - (1 << k)).div_ceil(step) - 1)
}

/// The bytes of a block of class `class`.
fn class_size(class: usize) -> usize {
    if class < 8 {
        return 16 * (class + 1);
    }
    let k = 7 + (class - 8) / 4;
    (1 << k) + ((class - 8) % 4 + 1) * (1 << (k - 2))
}

fn big_len(layout: &Layout) -> usize {
    (layout.size() + 4095) & !4095
}

impl Heap {
    /// A block for `layout` (of size class `class`), and whether it is fresh from a mapping
    /// (so still zero).
    fn small(&self, class: usize, layout: &Layout) -> (*mut u8, bool) {
        let mut s = self.state.lock();
        let head = s.free[class];
        // Free blocks are only known to be BLOCK_ALIGN-aligned.
        if !head.is_null() && layout.align() <= BLOCK_ALIGN {
            // SAFETY: a free block stores the next free block's address in its first word.
            s.free[class] = unsafe { *(head as *mut *mut u8) };
            return (head, false);
        }
        let size = class_size(class);
        let align = layout.align().max(BLOCK_ALIGN);
        let mut at = s.bump as usize;
        at = (at + align - 1) & !(align - 1);
        if s.bump.is_null() || at + size > s.bump_end as usize {
            let chunk = if s.first_taken {
                let Some(chunk) = sys::mmap_anon(CHUNK) else {
                    return (ptr::null_mut(), false);
                };
                chunk
            } else {
                s.first_taken = true;
                self.first_chunk.0.get() as *mut u8
            };
            s.bump_end = chunk.wrapping_add(CHUNK);
            // The first chunk is only 16-aligned; a mapped one is page-aligned.
            at = (chunk as usize + align - 1) & !(align - 1);
        }
        s.bump = (at + size) as *mut u8;
        (at as *mut u8, true)
    }

    /// Grows the small block at `p` from class `old` to class `new` where it is, if it is the
    /// block carved last and its chunk has room. The bytes it gains were never handed out.
    fn grow_in_place(&self, p: *mut u8, old: usize, new: usize) -> bool {
        let mut s = self.state.lock();
        let end = p as usize + class_size(new);
        if p as usize + class_size(old) != s.bump as usize || end > s.bump_end as usize {
            return false;
        }
        s.bump = end as *mut u8;
        true
    }
}

// SAFETY: blocks handed out are disjoint, sized for their class and aligned as asked (carved
// at the requested alignment, or reused from a free list only when BLOCK_ALIGN is enough),
// grow only over bytes never handed out, and are only freed once, onto their class's list.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(&layout) {
            Some(class) => self.small(class, &layout).0,
            None => sys::mmap_anon(big_len(&layout)).unwrap_or(ptr::null_mut()),
        }
    }

    /// Fresh mappings are zero already: only a reused block is cleared. Writing zeros over
    /// fresh pages would fault every one of them in, tens of pages at each start-up.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            return sys::mmap_anon(big_len(&layout)).unwrap_or(ptr::null_mut());
        };
        let (p, fresh) = self.small(class, &layout);
        if !fresh && !p.is_null() {
            // SAFETY: the block is ours, `layout.size()` bytes long at least.
            unsafe { ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(list) = class_of(&layout) else {
            sys::call(sys::nr::MUNMAP, &[p as u64, big_len(&layout) as u64]);
            return;
        };
        let mut s = self.state.lock();
        // SAFETY: the block is at least 16 bytes and ours again; its first word links it.
        unsafe { *(p as *mut *mut u8) = s.free[list] };
        s.free[list] = p;
    }

    /// A small block that keeps its class stays where it is, and one that grows grows there
    /// when it was carved last; anything else moves. (A block that shrank in place into a
    /// smaller class would be freed onto that class's list and never come back to its own:
    /// a path read into a `PATH_MAX` buffer and shrunk leaked 4 KiB a call.)
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract: `new_size`, rounded up to the alignment, fits `isize`.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if let (Some(old), Some(new)) = (class_of(&layout), class_of(&new)) {
            if new == old || (new > old && self.grow_in_place(p, old, new)) {
                return p;
            }
        }
        // SAFETY: `new` is a valid layout (above); the old block is ours and `layout`'s.
        unsafe {
            let moved = self.alloc(new);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(p, moved, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            moved
        }
    }
}
