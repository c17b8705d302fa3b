//! Where a logged-in miner's work comes from: its upstream and its slot there.

use crate::UpstreamId;
use std::num::NonZeroU32;

/// The upstream a miner mines on and its slot there (a NiceHash byte, or a stratum v1
/// extranonce prefix of up to two bytes), in 8 bytes with its `Option` (the
/// upstream id is kept plus one, so zero is the niche), instead of 24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    upstream: NonZeroU32,
    pub slot: u16,
}

impl Route {
    /// The route to `slot` of upstream `upstream`.
    pub fn new(upstream: UpstreamId, slot: u16) -> Route {
        // Upstream ids index the proxy's links, a few per 256 miners: far below 2^32.
        let id = u32::try_from(upstream.0).ok().and_then(|i| i.checked_add(1)).and_then(NonZeroU32::new);
        debug_assert!(id.is_some(), "upstream id {} out of range", upstream.0);
        Route { upstream: id.unwrap_or(NonZeroU32::MAX), slot }
    }

    /// The upstream this route leads to.
    pub fn upstream(&self) -> UpstreamId {
        UpstreamId(self.upstream.get() as usize - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_keeps_its_upstream_and_slot_in_eight_bytes() {
        for (id, slot) in [(0, 0), (1, 255), (70_000, 7)] {
            let r = Route::new(UpstreamId(id), slot);
            assert_eq!((r.upstream(), r.slot), (UpstreamId(id), slot));
        }
        assert_eq!(std::mem::size_of::<Option<Route>>(), 8);
    }
}
