//! The controller with injected time: unit scenarios, and simulated miners whose shares
//! arrive as a Poisson process drawn from a seeded generator. The simulations print what
//! they measure (`cargo test --lib vardiff -- --nocapture`); their bounds leave room
//! for chance, since a miner that is unlucky for minutes exists.

use super::sim::{Rng, SimMiner, trace};
use super::*;

/// A port with vardiff on and a `min` low enough not to matter.
fn cfg() -> VardiffConfig {
    VardiffConfig { enabled: true, min: 100.0, ..VardiffConfig::default() }
}

/// A pool difficulty far above every simulated miner.
const HIGH_POOL: f64 = 1e12;

/// Time per share within the target ±50 %.
fn on_target(ratio: f64) -> bool {
    (0.5..=1.5).contains(&ratio)
}

fn quantile(v: &[u32], q: f64) -> u32 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn share(v: &[bool]) -> f64 {
    v.iter().filter(|&&b| b).count() as f64 / v.len() as f64
}

/// What runs of one scenario did: the first second on target, and whether they were on
/// target at 300 and 600 seconds.
struct Convergence {
    reached: Vec<u32>,
    at_300: Vec<bool>,
    at_600: Vec<bool>,
}

impl Convergence {
    fn of(runs: impl Iterator<Item = Vec<f64>>) -> Convergence {
        let mut c = Convergence { reached: Vec::new(), at_300: Vec::new(), at_600: Vec::new() };
        for r in runs {
            c.reached.push(r.iter().position(|&x| on_target(x)).map_or(u32::MAX, |i| i as u32));
            c.at_300.push(on_target(r[300]));
            c.at_600.push(on_target(r[600]));
        }
        c
    }

    fn print(&self, name: &str) {
        let within = self.reached.iter().filter(|&&t| t <= 300).count() as f64 / self.reached.len() as f64;
        eprintln!(
            "{name}: on target first after p50 {} s, p90 {} s, p95 {} s; {:.1} % within 300 s; \
             on target at 300 s {:.1} %, at 600 s {:.1} %",
            quantile(&self.reached, 0.5),
            quantile(&self.reached, 0.9),
            quantile(&self.reached, 0.95),
            100.0 * within,
            100.0 * share(&self.at_300),
            100.0 * share(&self.at_600),
        );
    }
}

#[test]
fn vardiff_state_is_small() {
    assert_eq!(std::mem::size_of::<Auto>(), 16);
    assert_eq!(std::mem::size_of::<MinerDiff>(), 16, "the enum's tag fits in a spare value of Auto");
}

#[test]
fn vardiff_login_fixed_beats_vardiff_beats_pool() {
    let on = cfg();
    let off = VardiffConfig::default();
    assert_eq!(MinerDiff::login(&on, 5000.0, 10000.0, 0), MinerDiff::Fixed(5000.0));
    assert!(MinerDiff::login(&on, 0.0, 10000.0, 0).is_auto());
    assert_eq!(MinerDiff::login(&off, 0.0, 10000.0, 0), MinerDiff::Pool);
    assert_eq!(MinerDiff::login(&off, 5000.0, 10000.0, 0), MinerDiff::Fixed(5000.0));
}

#[test]
fn vardiff_custom_difficulty_stays_fixed() {
    let c = cfg();
    let mut d = MinerDiff::login(&c, 5000.0, 10000.0, 0);
    for t in 0..600 {
        // A flood of shares and every tick: nothing moves it.
        assert_eq!(d.on_share(&c, 5000.0, 10000.0, t), None);
        assert_eq!(d.tick(&c, 10000.0, t), None);
    }
    assert_eq!((d.difficulty(&c, 10000.0), d.step(), d.rate(&c, 10000.0, 600)), (5000.0, None, None));
    // Capped by the pool's, like any difficulty.
    assert_eq!(d.difficulty(&c, 3000.0), 3000.0);
    assert_eq!(d.pool_changed(&c, 10000.0, 3000.0, 600), Some(3000.0));
    let mut pool = MinerDiff::Pool;
    assert_eq!((pool.tick(&c, 777.0, 10), pool.difficulty(&c, 777.0)), (None, 777.0));
}

#[test]
fn vardiff_starts_at_the_pool_or_near_start() {
    let c = cfg();
    assert_eq!(MinerDiff::auto(&c, 123_457.0, 0).difficulty(&c, 123_457.0), 123_457.0, "exactly the pool's");
    let s = VardiffConfig { start: 5000.0, ..c };
    assert_eq!(MinerDiff::auto(&s, 1e9, 0).difficulty(&s, 1e9), Step(129).value(), "the step nearest 5000");
    // The pool's difficulty caps `start` and `min` too.
    assert_eq!(MinerDiff::auto(&s, 3000.0, 0).difficulty(&s, 3000.0), 3000.0);
    let m = VardiffConfig { min: 20_000.0, ..c };
    assert_eq!(MinerDiff::auto(&m, 8000.0, 0).difficulty(&m, 8000.0), 8000.0);
    assert_eq!(MinerDiff::auto(&m, 1e9, 0).difficulty_cryptonote(&m, 10_001), 10_001);
}

#[test]
fn vardiff_clamps_min_max_and_pool() {
    let mut rng = Rng::new(1);
    // A slow rig (ideal 30) on a port with min 1000: never below, and ends exactly at it.
    let c = VardiffConfig { min: 1000.0, ..cfg() };
    let mut m = SimMiner::new(&c, 1e6, 1.0, &mut rng);
    for t in 0..3600 {
        m.second(t, &c, 1e6, &mut rng);
        assert!(m.current >= 1000.0, "t={t}: {}", m.current);
    }
    assert_eq!(m.current, 1000.0);
    // A fast rig (ideal 3e8) under a pool at 1e6 and a max of 5e5.
    for (max, pool, end) in [(0.0, 1e6, 1e6), (5e5, 1e6, 5e5), (5e5, 2e5, 2e5)] {
        let c = VardiffConfig { max, ..cfg() };
        let mut m = SimMiner::new(&c, pool, 1e7, &mut rng);
        for t in 0..1800 {
            m.second(t, &c, pool, &mut rng);
            assert!(m.current <= pool && (max == 0.0 || m.current <= max), "t={t}: {}", m.current);
        }
        assert_eq!(m.current, end, "max {max}, pool {pool}");
    }
}

#[test]
fn vardiff_never_changes_sooner_than_15_seconds() {
    let c = cfg();
    // A flood (40x too easy), a silence (40x too hard), miners at target and a shift.
    for (start, rate) in [(750.0, 1000.0), (1.2e6, 1000.0), (30_000.0, 1000.0), (30_000.0, 1e5)] {
        for seed in 0..50 {
            let (_, m) = trace(&VardiffConfig { start, ..c }, HIGH_POOL, rate, 1800, seed);
            let mut last = 0;
            for &t in &m.changes {
                assert!(t - last >= MIN_INTERVAL, "start {start} rate {rate} seed {seed}: {:?}", m.changes);
                last = t;
            }
        }
    }
}

#[test]
fn vardiff_silence_alone_brings_a_40x_start_down_within_5_minutes() {
    // A rig that finds nothing while its difficulty is too hard: the silence rule alone.
    let c = cfg();
    let pool = 1.2e6; // 40 times the 30 000 a 1 kH/s rig needs for 30 s per share
    let mut d = MinerDiff::auto(&c, pool, 0);
    let mut at = Vec::new();
    for t in 0..=300 {
        if let Some(diff) = d.tick(&c, pool, t) {
            at.push((t, (diff / 30_000.0 * 100.0).round() / 100.0));
        }
    }
    eprintln!("silent drops (second, times the target difficulty): {at:?}");
    assert_eq!(at[0].0, 90, "the first drop after three target times");
    let (t, r) = *at.iter().find(|(_, r)| *r <= 1.5).unwrap();
    assert!(t <= 240 && r >= 0.5, "on target at {t} s ({r})");
}

#[test]
fn vardiff_a_miner_40x_too_hard_reaches_target_within_5_minutes() {
    let c = cfg();
    let runs = (0..400).map(|seed| trace(&c, 1.2e6, 1000.0, 601, seed).0);
    let conv = Convergence::of(runs);
    conv.print("40x too hard");
    let within = conv.reached.iter().filter(|&&t| t <= 300).count();
    assert!(within >= 370, "{within} of 400 reached the target within 5 minutes");
    assert!(share(&conv.at_300) >= 0.65 && share(&conv.at_600) >= 0.85);
}

#[test]
fn vardiff_a_miner_40x_too_easy_settles() {
    let c = VardiffConfig { start: 750.0, ..cfg() };
    let runs = (0..400).map(|seed| trace(&c, HIGH_POOL, 1000.0, 601, seed).0);
    let conv = Convergence::of(runs);
    conv.print("40x too easy");
    assert!(quantile(&conv.reached, 0.95) <= 60);
    assert!(share(&conv.at_300) >= 0.9 && share(&conv.at_600) >= 0.9);
}

#[test]
fn vardiff_miners_of_mixed_speeds_converge() {
    // 1 kH/s to 1 MH/s, all starting at 1e6: from 33 times too hard to 30 times too easy.
    let c = VardiffConfig { start: 1e6, ..cfg() };
    let mut rng = Rng::new(7);
    let rates: Vec<f64> = (0..1000).map(|_| rng.log_uniform(1e3, 1e6)).collect();
    let runs = rates.iter().enumerate().map(|(i, &r)| trace(&c, HIGH_POOL, r, 601, i as u64).0);
    let conv = Convergence::of(runs);
    conv.print("mixed speeds");
    assert!(share(&conv.at_300) >= 0.75 && share(&conv.at_600) >= 0.85);
}

#[test]
fn vardiff_a_miner_at_target_does_not_oscillate() {
    let c = VardiffConfig { start: 30_000.0, ..cfg() };
    let (mut changes, mut on) = (Vec::new(), Vec::new());
    for seed in 0..200 {
        let (ratios, m) = trace(&c, HIGH_POOL, 1000.0, 4200, seed);
        // The hour after the first ten minutes.
        changes.push(m.changes.iter().filter(|&&t| t >= 600).count() as u32);
        on.extend(ratios[600..].iter().map(|&r| on_target(r)));
    }
    let mean = changes.iter().sum::<u32>() as f64 / changes.len() as f64;
    eprintln!(
        "at target: {mean:.1} changes per hour on average, p50 {} p95 {} max {}; on target {:.1} % of the time",
        quantile(&changes, 0.5),
        quantile(&changes, 0.95),
        quantile(&changes, 1.0),
        100.0 * share(&on)
    );
    assert!(mean <= 3.0 && quantile(&changes, 0.95) <= 7);
    assert!(share(&on) >= 0.9);
}

#[test]
fn vardiff_follows_a_rig_that_changes_speed() {
    for factor in [40.0, 1.0 / 40.0] {
        let c = VardiffConfig { start: 30_000.0, ..cfg() };
        let mut back = Vec::new();
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut m = SimMiner::new(&c, HIGH_POOL, 1000.0, &mut rng);
            let mut since = None;
            for t in 0..3600 {
                if t == 1800 {
                    m.hashrate *= factor;
                }
                m.second(t, &c, HIGH_POOL, &mut rng);
                if t >= 1800 && since.is_none() && on_target(m.ratio(&c)) {
                    since = Some(t - 1800);
                }
            }
            back.push(since.unwrap_or(u32::MAX));
        }
        eprintln!("rate x{factor}: back on target after p50 {} s, p90 {} s", quantile(&back, 0.5), quantile(&back, 0.9));
        assert!(quantile(&back, 0.9) <= 900);
    }
}

#[test]
fn vardiff_a_rig_that_stops_goes_down_to_min() {
    let c = VardiffConfig { min: 1000.0, ..cfg() };
    let mut rng = Rng::new(3);
    let mut m = SimMiner::new(&VardiffConfig { start: 30_000.0, ..c }, HIGH_POOL, 1000.0, &mut rng);
    for t in 0..1800 {
        m.second(t, &c, HIGH_POOL, &mut rng);
    }
    m.hashrate = 1e-9;
    for t in 1800..3000 {
        m.second(t, &c, HIGH_POOL, &mut rng);
    }
    assert_eq!(m.current, 1000.0);
}

#[test]
fn vardiff_pool_difficulty_drop_applies_at_once() {
    let c = VardiffConfig { start: 30_000.0, ..cfg() };
    let mut rng = Rng::new(5);
    let mut m = SimMiner::new(&c, 1e9, 1000.0, &mut rng);
    for t in 0..1200 {
        m.second(t, &c, 1e9, &mut rng);
    }
    let settled = m.current;
    assert!(settled > 10_000.0);
    // The pool drops below the miner: at once, exactly the pool's.
    assert_eq!(m.diff.pool_changed(&c, 1e9, 10_000.0, 1200), Some(10_000.0));
    m.pool_changed(1200, &c, 1e9, 10_000.0, &mut rng);
    assert_eq!(m.current, 10_000.0);
    for t in 1200..2400 {
        m.second(t, &c, 10_000.0, &mut rng);
        assert!(m.current <= 10_000.0);
    }
    // Shares at the pool's difficulty kept measuring the rig: when the pool rises again,
    // the miner returns to about its own difficulty, not to the pool's.
    m.pool_changed(2400, &c, 10_000.0, 1e9, &mut rng);
    assert!(m.current > 10_000.0 && on_target(m.ratio(&c)), "{}", m.current);
    // A pool that moves above the miner's difficulty changes nothing.
    assert_eq!(m.diff.pool_changed(&c, 1e9, 2e9, 2400), None);
}

#[test]
fn vardiff_shares_of_an_easier_job_count_for_less() {
    let c = VardiffConfig { start: 30_000.0, ..cfg() };
    let (mut full, mut part) = (MinerDiff::auto(&c, 1e9, 0), MinerDiff::auto(&c, 1e9, 0));
    let d = full.difficulty(&c, 1e9);
    full.on_share(&c, d, 1e9, 5);
    part.on_share(&c, d / 4.0, 1e9, 5);
    let (a, b) = (full.rate(&c, 1e9, 10).unwrap(), part.rate(&c, 1e9, 10).unwrap());
    assert!((b / a - 0.25).abs() < 1e-6, "{a} {b}");
}

#[test]
fn vardiff_stratum_v1_fractions() {
    // A CPU miner on a sha256d pool: difficulty 0.5 at the pool, 0.003 would give 30 s.
    let c = VardiffConfig { enabled: true, min: 0.0001, ..VardiffConfig::default() };
    let mut on = 0;
    for seed in 0..100 {
        let (ratios, m) = trace(&c, 0.5, 0.0001, 901, seed);
        on += usize::from(on_target(ratios[900]));
        assert!(Step::exact(m.current).is_some(), "a ladder value: {}", m.current);
    }
    assert!(on >= 85, "{on} of 100 on target at 15 minutes");
}

#[test]
fn vardiff_cryptonote_difficulties_are_whole_and_under_the_pool() {
    let c = VardiffConfig { start: 30_000.0, ..cfg() };
    let d = MinerDiff::auto(&c, 1e9, 0);
    let v = d.difficulty_cryptonote(&c, 1_000_000_000);
    assert_eq!(v, to_cryptonote(d.difficulty(&c, 1e9)));
    assert_eq!(Step::exact_cryptonote(v), d.step());
    assert_eq!(d.difficulty_cryptonote(&c, 20_000), 20_000);
    assert_eq!(MinerDiff::Pool.difficulty_cryptonote(&c, 0), 0, "a pool without difficulty stays so");
}

#[test]
fn vardiff_times_wrap_past_18_hours() {
    // Times are kept in 16 bits: a miner that logs in just before they wrap converges.
    let c = VardiffConfig { start: 1.2e6, ..cfg() };
    let mut on = 0;
    for seed in 0..50 {
        let mut rng = Rng::new(seed);
        let start = 65_400;
        let mut m = SimMiner::with(MinerDiff::auto(&c, HIGH_POOL, start), start, &c, HIGH_POOL, 1000.0, &mut rng);
        for t in start..start + 900 {
            m.second(t, &c, HIGH_POOL, &mut rng);
        }
        on += usize::from(on_target(m.ratio(&c)));
    }
    assert!(on >= 45, "{on} of 50");
}

#[test]
fn vardiff_ladder_steps_in_use_by_10000_miners() {
    // 1 kH/s to 1 MH/s at 30 s per share: difficulties from 30 000 to 3e7.
    let c = VardiffConfig { start: 1e6, min: 1000.0, ..cfg() };
    let mut rng = Rng::new(11);
    let mut all = std::collections::BTreeSet::new();
    let mut per_upstream = Vec::new();
    let mut upstream = std::collections::BTreeSet::new();
    for i in 0..10_000u64 {
        let rate = rng.log_uniform(1e3, 1e6);
        let (_, m) = trace(&c, 1e10, rate, 900, i);
        let d = to_cryptonote(m.current);
        all.insert(d);
        upstream.insert(d);
        // NiceHash mode: 256 miners per upstream.
        if i % 256 == 255 {
            per_upstream.push(upstream.len() as u32);
            upstream.clear();
        }
    }
    let ladder = (Step::floor(30_000.0).0..=Step::ceil(3e7).0).count();
    eprintln!(
        "10 000 miners use {} difficulties ({ladder} ladder steps span their ideals); \
         per upstream of 256: p50 {}, max {}",
        all.len(),
        quantile(&per_upstream, 0.5),
        quantile(&per_upstream, 1.0)
    );
    assert!(all.iter().all(|&d| Step::exact_cryptonote(d).is_some()), "ladder values only");
    assert!(all.len() <= 60, "{}", all.len());
}

/// The loop ticks once a second, and a tick may come before the shares of its own second:
/// a fast miner must still be raised (a one-second gap is no silence).
#[test]
fn a_tick_before_the_seconds_shares_does_not_take_it_for_a_silence() {
    let cfg = VardiffConfig { enabled: true, target_time: 1, min: 1000.0, max: 0.0, start: 1000.0 };
    let pool = 1_000_000.0;
    let mut m = MinerDiff::login(&cfg, 0.0, pool, 0);
    let mut raised = None;
    for t in 0..40u32 {
        if m.tick(&cfg, pool, t).is_some() && raised.is_none() {
            raised = Some(t);
        }
        for _ in 0..13 {
            let d = m.difficulty(&cfg, pool);
            if m.on_share(&cfg, d, pool, t).is_some() && raised.is_none() {
                raised = Some(t);
            }
        }
    }
    assert!(raised.is_some_and(|t| t <= 16), "raised at {raised:?}");
    assert!(m.difficulty(&cfg, pool) > 5000.0, "{}", m.difficulty(&cfg, pool));
}
