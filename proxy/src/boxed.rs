//! Boxing a future where it is made. `Box::pin(f())` builds `f`'s future on the stack and then
//! copies all of it (kilobytes for the proxy's handlers) into the heap; allocating first lets
//! the future be built in its box.

use std::pin::Pin;

/// `Box::pin(make())`, with the allocation made before the future, so that the compiler can
/// write the future straight into it.
#[inline(always)]
pub(crate) fn pinned<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}
