//! Compiling a host kernel twice: for the baseline x86-64 target (SSE2, what a release build
//! targets unless told otherwise) and with AVX2 enabled, picking the AVX2 build at run time where
//! the CPU has it. The loops of the sparse products, Adam and the row updates are written as
//! plain iterator code that the compiler vectorises; with AVX2 enabled it uses 8-lane instead of
//! 4-lane registers. Only AVX2 is enabled, not FMA, so every multiply and add still rounds on its
//! own: both builds give the same results, bit for bit.

/// Whether the AVX2 builds may run on this CPU.
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn $name(args) -> ret { body }` compiled twice (baseline and AVX2) and dispatched
/// at run time by [`has_avx2`]. Helpers the body calls must be `#[inline(always)]` to be
/// compiled into the AVX2 build.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::host::simd::has_avx2() {
                // SAFETY: the CPU has AVX2 (checked just above), the only requirement of a
                // `#[target_feature(enable = "avx2")]` function.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;
