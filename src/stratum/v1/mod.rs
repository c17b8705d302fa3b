//! Stratum v1, the Bitcoin-family dialect, without sockets: everything the event loop needs
//! to serve v1 miners (cpuminer, cgminer / bmminer ASIC firmware) from v1 pools, as types
//! and functions that take parsed lines and return what to write.
//!
//! The rooms:
//!
//! - [`message`] parses miner requests ([`message::parse_request`]); [`pool_message`] parses
//!   pool lines ([`pool_message::parse_pool`]): replies to our numeric ids in every error
//!   shape pools use, and the notifications.
//! - [`write`](mod@write) encodes every line we send, to miners and to pools, into a `Vec<u8>`.
//! - [`error`]: the `[code, "message", null]` errors miners get (20-25).
//! - [`job`]: a validated `mining.notify` ([`job::V1Job`]); [`store`]: the jobs of one
//!   upstream still open for shares, each with its notify line encoded once, the pool
//!   difficulty of its time and its duplicate memory.
//! - [`header`]: coinbase, merkle root, the 80-byte header, sha256d / scrypt and the
//!   difficulty of a hash; [`check`]: the share check ([`check::check_share`]).
//! - [`extranonce`]: how one pool session is shared: extranonce1 `E || P` with a unique
//!   prefix per miner, and the prefix table.
//!
//! Which pools speak v1, and what their difficulty is worth in hashes, is in
//! [`crate::stratum::algo`] (`Dialect::of`, `divider`).
//!
//! ## A pool link
//!
//! 1. Write [`write::pool_configure`] (to roll version bits), [`write::pool_subscribe`],
//!    [`write::pool_authorize`] and, to hear about extranonce changes instead of losing
//!    the session, [`write::pool_extranonce_subscribe`], each with an id of ours.
//! 2. Feed each line to [`pool_message::parse_pool`]:
//!    - the subscribe reply, through [`pool_message::subscribe_result`]: keep `E`, make
//!      `Split::for_pool(size)`, a [`extranonce::PrefixTable`] and a [`store::JobStore`];
//!    - the configure reply, through [`pool_message::configure_result`]: the pool's mask;
//!    - the authorize reply: [`pool_message::Reply::is_true`];
//!    - `SetDifficulty(d)`: [`store::JobStore::set_pool_difficulty`], for jobs after it;
//!    - `Notify(job)`: remember `job.clean`, [`store::JobStore::add`] it, and on a clean
//!      job [`extranonce::PrefixTable::clear_dead`]; write [`store::StoredJob::line`] to
//!      every miner of the upstream, unchanged;
//!    - `SetExtranonce`: [`store::JobStore::clear`]; miners that sent
//!      `mining.extranonce.subscribe` get [`write::set_extranonce`] with their prefix, the
//!      others must reconnect (see below);
//!    - `SetVersionMask(m)`: each miner gets [`write::set_version_mask`] of `m` & its own;
//!    - a reply to a forwarded submit: our id leads (through the loop's pending table) to
//!      the miner and its kept request id; answer [`write::bool_reply`] `true`, or
//!      [`write::error_reply`] with [`pool_message::Reply::to_v1_error`].
//!
//! ## A miner
//!
//! The first line decides the dialect: a `mining.*` method is v1.
//!
//! 1. `Configure` (often first, before subscribe): grant
//!    [`message::VersionRolling::grant`] of the pool's mask, answer
//!    [`write::configure_reply`] (every extension asked gets an answer).
//! 2. `Subscribe`: choose an upstream, [`extranonce::PrefixTable::add`] (`None`: it is
//!    full, try another or open one), answer [`write::subscribe_reply`] with `E`, the
//!    prefix and `split.miner_size`. The session id is ours to choose; cpuminer sends it
//!    back in its next subscribe to resume.
//! 3. `Authorize`: answer `true`, then [`write::set_difficulty`] (keep a
//!    [`check::MinerDifficulty`]) and [`store::StoredJob::write_clean`] of the current
//!    job. Requests before subscribe are answered [`error::V1Error::NotSubscribed`], submits
//!    before authorize [`error::V1Error::Unauthorized`].
//! 4. `Submit`: [`check::check_share`] with a [`check::ShareContext`]. `Forward` and
//!    `Unchecked`: write [`write::pool_submit`] with a new id of ours and keep the miner's
//!    id (`crate::stratum::request::KeptId`) until the pool answers. `Local`: answer
//!    `true` now. A [`check::Reject`]: answer its [`check::Reject::error`].
//!    The miner's request id is only ever echoed: cpuminer uses 4 for every submit.
//! 5. The miner leaves: [`extranonce::PrefixTable::remove`]; its prefix stays dead until
//!    the next clean job.
//!
//! ## What real miners do (read from their sources)
//!
//! - cpuminer 2.5: sends `mining.subscribe` (with the previous session id when it
//!   reconnects), `mining.authorize`, and submits with id 4; never `mining.configure`,
//!   `mining.extranonce.subscribe` or `mining.suggest_difficulty`. It ignores
//!   `mining.set_extranonce` (unknown methods are dropped), so changing its extranonce1
//!   means closing the connection: it reconnects by itself. It honours `client.reconnect`
//!   only with a host and a port in the params (unless run with `--no-redirect`); without
//!   them the message is ignored. It takes the reject reason from element 1 of an error
//!   array. It requires an extranonce2 size of 1 to 100. Fractional difficulties work:
//!   its target is `0xffff0000 * 2^192 / diff`, and for scrypt it divides the difficulty
//!   by 65536 first, which keeps working down to about 1.5e-5.
//! - cgminer 4.x and the ASIC firmware built on it: refuse an extranonce2 size outside
//!   2..=16 and cannot submit one over 8 bytes. Version-rolling builds send
//!   `mining.configure [["version-rolling"], {"version-rolling.mask": "ffffffff"}]`
//!   before subscribing; Bitmain's bmminer adds `"version-rolling.min-bit-count": 2`,
//!   Braiins' bmminer says `"version-rolling.bit-count": 2` and needs the mask to cover
//!   bits 0x00c00000.
//!
//! ## Cost
//!
//! A sha256d share check is about coinbase length / 64 + 3 x branches + 4 SHA-256
//! compressions (some 15-20 for a typical job) and no allocation. A scrypt check is one scrypt (about 0.2 ms on one core
//! of this machine, release build) and the `scrypt` crate allocates its 128 KiB scratch
//! per call; a scrypt proxy taking thousands of shares a second should know that.

pub mod check;
pub mod error;
pub mod extranonce;
pub mod header;
pub mod job;
pub mod message;
pub mod pool_message;
pub mod store;
mod submit_params;
pub mod write;

#[cfg(test)]
mod fixtures;
