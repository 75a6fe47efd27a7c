//! A spin lock on atomics: the kernel may not use libc's locks or futexes it does not own.
//!
//! Critical sections here are a few instructions long and never make a blocking call, and
//! SIGSYS handlers run with every signal blocked, so a holder is never interrupted by a
//! handler that wants the same lock. Fork is handled by taking every lock before the fork
//! ([`crate::Kernel::prepare_fork`]) so that the child never inherits one half-held.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Mutual exclusion by spinning.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked`, so sharing the lock between threads
// is sound whenever `T` may be sent between them.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: the lock owns its value; moving it moves the value.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new, unlocked lock.
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Spins until the lock is free, then holds it until the guard drops.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.raw_lock();
        SpinGuard { lock: self }
    }

    /// Takes the lock without a guard; pair with [`SpinLock::raw_unlock`]. Used around fork.
    pub fn raw_lock(&self) {
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }

    /// The value, while the caller holds the lock through [`SpinLock::raw_lock`].
    ///
    /// # Safety
    /// The calling thread must hold the lock (taken with `raw_lock`, not yet released), and
    /// must not keep the reference past `raw_unlock`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn raw_get(&self) -> &mut T {
        // SAFETY: the caller holds the lock, so no other reference exists.
        unsafe { &mut *self.value.get() }
    }

    /// Releases a lock taken with [`SpinLock::raw_lock`].
    pub fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

/// Holds a [`SpinLock`]; releases it when dropped.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `locked` is held by this thread.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw_unlock();
    }
}

/// A value set at most once, readable without a lock. A thread that loses the race to set it,
/// or a child forked while it was being set, simply does without (`get` returns `None`), so
/// there is nothing for a fork to leave half-held.
pub struct OnceValue<T> {
    state: core::sync::atomic::AtomicU8,
    value: UnsafeCell<core::mem::MaybeUninit<T>>,
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

// SAFETY: the value is written once, before `state` becomes READY with release ordering, and
// only read after an acquire load sees READY; it is never written again.
unsafe impl<T: Send + Sync> Sync for OnceValue<T> {}

impl<T> OnceValue<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        OnceValue {
            state: core::sync::atomic::AtomicU8::new(EMPTY),
            value: UnsafeCell::new(core::mem::MaybeUninit::uninit()),
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY is stored only after the value was fully written.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// Sets the value unless it is set or being set.
    pub fn set(&self, value: T) {
        if self.state.compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            // SAFETY: winning the EMPTY → WRITING exchange gives this thread sole access.
            unsafe { (*self.value.get()).write(value) };
            self.state.store(READY, Ordering::Release);
        }
    }
}

impl<T> Default for OnceValue<T> {
    fn default() -> Self {
        Self::new()
    }
}
