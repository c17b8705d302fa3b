//! Known data for the tests: real blocks (their header fields as a block explorer shows
//! them) and the notifies and shares of the cpuminer 2.5.1 capture in
//! `shared/reference/wire/stratum-v1-miner.log`, whose pool accepted every share.

use serde_json::{Value, json};

/// A block's header fields; hashes in block-explorer (big-endian) hex.
pub struct Block {
    pub hash: &'static str,
    pub version: u32,
    pub prev: &'static str,
    pub merkle_root: &'static str,
    pub ntime: u32,
    pub nbits: u32,
    pub nonce: u32,
}

pub const BTC_GENESIS: Block = Block {
    hash: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    version: 1,
    prev: "0000000000000000000000000000000000000000000000000000000000000000",
    merkle_root: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    ntime: 1_231_006_505,
    nbits: 0x1d00_ffff,
    nonce: 2_083_236_893,
};

/// The genesis block's only transaction, whose hash is its merkle root.
pub const BTC_GENESIS_COINBASE: &str = concat!(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d",
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f",
    "6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2",
    "052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649",
    "f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000",
);

/// Block 170: the first block with two transactions (a coinbase and a payment).
pub const BLOCK_170: Block = Block {
    hash: "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",
    version: 1,
    prev: "000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55",
    merkle_root: "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff",
    ntime: 1_231_731_025,
    nbits: 0x1d00_ffff,
    nonce: 1_889_418_792,
};

pub const BLOCK_170_TXIDS: [&str; 2] = [
    "b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082",
    "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16",
];

/// Litecoin's genesis block: `hash` is its block hash (sha256d); its scrypt hash is the
/// proof of work.
pub const LTC_GENESIS: Block = Block {
    hash: "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2",
    version: 1,
    prev: "0000000000000000000000000000000000000000000000000000000000000000",
    merkle_root: "97ddfbbae6be97fd6cdf3e7ca13232a3afff2353e29badfab7f73011edd4ced9",
    ntime: 1_317_972_665,
    nbits: 0x1e0f_fff0,
    nonce: 2_084_524_493,
};

/// The capture's extranonce1, extranonce2 and difficulty.
pub const CAPTURE_EXTRANONCE1: &str = "f0000001";
pub const CAPTURE_EXTRANONCE2: &str = "0000000000000000";
pub const CAPTURE_DIFF: f64 = 0.004;

const COINB1: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20";
const COINB2: &str = "ffffffff0100f2052a010000001976a914a2593c986c86ca323a339d7781cc04bb2fd15ac388ac00000000";

/// The capture's three notifies (params), in order.
pub fn capture_notifies() -> [Value; 3] {
    let n = |id: &str, prev: &str, tag: &str, branches: [&str; 2], ntime: &str| {
        json!([id, prev, format!("{COINB1}{tag}000000"), COINB2, branches, "20000000", "1d00ffff", ntime, true])
    };
    [
        n(
            "00000001",
            "87e0d3245fc1e0bf78b96d6052984436f91444a40153428ffbaf08fb1cc1643d",
            "01",
            [
                "ec281a3fd6059c526ee46c08f741390a4ad3f4d68197989527a93fb3aa507b9f",
                "c1467dc3a5518ea6089192101a1186d0209d0bfd060af53ad0453637d1374267",
            ],
            "6553f13c",
        ),
        n(
            "00000002",
            "6d09f6506c43f5183e8b3dd28ff582b712e919a6b626f4a40214985fb65ea9e2",
            "02",
            [
                "889189c74bb24a7870136d33a18f20cfd8c13c9b20648fff4bafc82a0bf67a28",
                "420cffbe801a3040e31b6155213b354974a6c83a48a6d606088ffa8211b83c72",
            ],
            "6553f178",
        ),
        n(
            "00000003",
            "5a54ab38cf50237ae8d4cc0e0ab4a2590aeb571570b6eccc06cb78139cf20a57",
            "03",
            [
                "416d0f89730ca6e61d50e236bd6d2518afc2a11b00b0fae35fe99737f356f8bf",
                "5127f090a142f9c5e0470b023a387fca82cd56c60da447650ee50b487b5bd1af",
            ],
            "6553f1b4",
        ),
    ]
}

/// The capture's shares: (index of the notify, ntime, nonce), all with extranonce2 zero.
pub const CAPTURE_SHARES: [(usize, &str, &str); 7] = [
    (0, "6553f13c", "7c96d100"),
    (0, "6553f13c", "b7645401"),
    (1, "6553f178", "f8fbf300"),
    (1, "6553f178", "c6da7b02"),
    (1, "6553f178", "87aa7d02"),
    (1, "6553f178", "54481c04"),
    (2, "6553f1b4", "1e13af01"),
];
