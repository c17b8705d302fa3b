//! Where the miners of a weighted group go, free of sockets.
//!
//! A weighted group mines several pools at once (one lane each) and gives each its part of
//! the group's hashrate. The *load* of a lane is the sum of its miners' measured rates (a
//! miner not measured yet counts as the group's mean, or as 1 before anyone is measured,
//! so the split starts out by count). A new miner goes to the usable lane furthest below
//! its part (`choose`). Every few seconds `plan` looks at the whole group: miners on a lane
//! that is no longer usable must move at once; between usable lanes, miners move only when
//! a lane is off its part by more than a tolerance, and only moves that bring the loads
//! closer to the parts are made, so estimates that wobble do not shuffle miners around.

use crate::MinerId;

/// A lane is rebalanced only when it is this far (part of the group's load) off its part.
pub const TOLERANCE: f64 = 0.05;

/// A miner as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    pub miner: MinerId,
    pub lane: usize,
    /// Measured hashrate, `None` before its first share.
    pub rate: Option<f64>,
}

/// A move the planner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub miner: MinerId,
    pub from: usize,
    pub to: usize,
    /// The miner's lane is not usable: move now, not at the next job.
    pub urgent: bool,
}

/// The rate a member counts for, and the unit for unmeasured ones.
fn unit(members: &[Member]) -> f64 {
    let measured: Vec<f64> = members.iter().filter_map(|m| m.rate).filter(|r| *r > 0.0).collect();
    if measured.is_empty() { 1.0 } else { measured.iter().sum::<f64>() / measured.len() as f64 }
}

/// Each lane's load.
pub fn loads(lanes: usize, members: &[Member]) -> Vec<f64> {
    let u = unit(members);
    let mut out = vec![0.0; lanes];
    for m in members {
        if let Some(l) = out.get_mut(m.lane) {
            *l += m.rate.unwrap_or(u);
        }
    }
    out
}

/// The usable lane furthest below its part (by `weights`), for a miner about to join.
pub fn choose(weights: &[u32], usable: &[bool], loads: &[f64]) -> Option<usize> {
    let w_total: f64 = weights.iter().zip(usable).filter(|(_, u)| **u).map(|(w, _)| f64::from(*w)).sum();
    let l_total: f64 = loads.iter().zip(usable).filter(|(_, u)| **u).map(|(l, _)| *l).sum();
    let deficit = |i: usize| {
        let part = if l_total > 0.0 { loads[i] / l_total } else { 0.0 };
        f64::from(weights[i]) / w_total - part
    };
    (0..weights.len().min(usable.len()).min(loads.len())).filter(|&i| usable[i] && w_total > 0.0).max_by(|&a, &b| {
        // Ties go to the lower lane: the first weighted pool fills first.
        deficit(a).total_cmp(&deficit(b)).then(b.cmp(&a))
    })
}

/// The moves that bring the group's lanes to their parts.
pub fn plan(weights: &[u32], usable: &[bool], members: &[Member]) -> Vec<Move> {
    let lanes = weights.len().min(usable.len());
    if !usable.iter().any(|u| *u) {
        return Vec::new();
    }
    let u = unit(members);
    let rate = |m: &Member| m.rate.unwrap_or(u);
    let mut load = loads(lanes, members);
    let mut moves = Vec::new();
    // Lanes that cannot mine: everyone leaves, the heaviest first, each to the lane
    // furthest below its part.
    let mut stranded: Vec<&Member> = members.iter().filter(|m| m.lane < lanes && !usable[m.lane]).collect();
    stranded.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    for m in stranded {
        let Some(to) = choose(weights, usable, &load) else { break };
        load[m.lane] -= rate(m);
        load[to] += rate(m);
        moves.push(Move { miner: m.miner, from: m.lane, to, urgent: true });
    }
    // Between usable lanes: from the most loaded (against its part) to the least, the
    // miner whose rate closes the gap best, while a lane is off by more than the tolerance.
    let w_total: f64 = (0..lanes).filter(|&i| usable[i]).map(|i| f64::from(weights[i])).sum();
    let total: f64 = (0..lanes).filter(|&i| usable[i]).map(|i| load[i]).sum();
    if total <= 0.0 || w_total <= 0.0 {
        return moves;
    }
    let gap = |load: &[f64], i: usize| load[i] - total * f64::from(weights[i]) / w_total;
    let mut on_lane: Vec<Vec<(f64, MinerId)>> = vec![Vec::new(); lanes];
    for m in members.iter().filter(|m| m.lane < lanes && usable[m.lane]) {
        on_lane[m.lane].push((rate(m), m.miner));
    }
    for _ in 0..members.len() {
        let usable_lanes = (0..lanes).filter(|&i| usable[i]);
        let Some(over) = usable_lanes.clone().max_by(|&a, &b| gap(&load, a).total_cmp(&gap(&load, b))) else { break };
        let Some(under) = usable_lanes.min_by(|&a, &b| gap(&load, a).total_cmp(&gap(&load, b))) else { break };
        let (excess, deficit) = (gap(&load, over), -gap(&load, under));
        if over == under || excess.max(deficit) <= TOLERANCE * total {
            break;
        }
        // Moving rate r changes the two gaps' sum of magnitudes by this much.
        let gain = |r: f64| excess + deficit - (excess - r).abs() - (deficit - r).abs();
        let best = on_lane[over].iter().enumerate().max_by(|(_, a), (_, b)| gain(a.0).total_cmp(&gain(b.0)));
        let Some((idx, &(r, miner))) = best else { break };
        if gain(r) <= 1e-9 * total {
            break;
        }
        on_lane[over].swap_remove(idx);
        on_lane[under].push((r, miner));
        load[over] -= r;
        load[under] += r;
        moves.push(Move { miner, from: over, to: under, urgent: false });
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(spec: &[(usize, Option<f64>)]) -> Vec<Member> {
        spec.iter().enumerate().map(|(i, &(lane, rate))| Member { miner: MinerId(i), lane, rate }).collect()
    }

    /// Places `n` unmeasured miners one by one, as logins do.
    fn place(weights: &[u32], usable: &[bool], n: usize) -> Vec<usize> {
        let mut load = vec![0.0; weights.len()];
        let mut counts = vec![0; weights.len()];
        for _ in 0..n {
            let lane = choose(weights, usable, &load).unwrap();
            load[lane] += 1.0;
            counts[lane] += 1;
        }
        counts
    }

    #[test]
    fn new_miners_are_placed_by_count_in_proportion_to_the_weights() {
        assert_eq!(place(&[70, 30], &[true, true], 20), [14, 6]);
        assert_eq!(place(&[70, 30], &[true, true], 10), [7, 3]);
        assert_eq!(place(&[1, 1, 1], &[true, true, true], 7), [3, 2, 2]);
        assert_eq!(place(&[70, 30], &[false, true], 5), [0, 5], "an unusable lane takes nobody");
        assert_eq!(choose(&[1], &[false], &[0.0]), None);
    }

    #[test]
    fn after_measuring_a_new_miner_goes_where_the_part_is_short() {
        // Lane 0 has one fast miner (70 % asked, 80 % there): the next goes to lane 1.
        assert_eq!(choose(&[70, 30], &[true, true], &[800.0, 200.0]), Some(1));
        assert_eq!(choose(&[70, 30], &[true, true], &[600.0, 400.0]), Some(0));
    }

    #[test]
    fn a_balanced_group_is_left_alone() {
        let mut spec = vec![(0, Some(100.0)); 14];
        spec.extend(vec![(1, Some(100.0)); 6]);
        assert!(plan(&[70, 30], &[true, true], &members(&spec)).is_empty());
    }

    #[test]
    fn wobbling_estimates_within_the_tolerance_move_nobody() {
        let mut spec: Vec<(usize, Option<f64>)> = (0..14).map(|i| (0, Some(95.0 + (i % 3) as f64 * 5.0))).collect();
        spec.extend((0..6).map(|i| (1, Some(90.0 + (i % 2) as f64 * 10.0))));
        assert!(plan(&[70, 30], &[true, true], &members(&spec)).is_empty());
    }

    #[test]
    fn a_drifted_split_moves_the_miners_that_close_the_gap() {
        // Ten equal miners all on lane 0 of a 70/30 group: three go to lane 1.
        let spec = vec![(0, Some(100.0)); 10];
        let moves = plan(&[70, 30], &[true, true], &members(&spec));
        assert_eq!(moves.len(), 3);
        assert!(moves.iter().all(|m| m.from == 0 && m.to == 1 && !m.urgent));
        // A fast miner fixes it alone.
        let spec = [(0, Some(100.0)), (0, Some(100.0)), (0, Some(100.0)), (0, Some(100.0)), (0, Some(400.0))];
        let moves = plan(&[50, 50], &[true, true], &members(&spec));
        assert_eq!(moves.iter().map(|m| m.miner).collect::<Vec<_>>(), [MinerId(4)]);
    }

    #[test]
    fn miners_of_an_unusable_lane_all_move_at_once_by_weight() {
        let spec = vec![(0, None); 14].into_iter().chain(vec![(1, None); 6]).collect::<Vec<_>>();
        let moves = plan(&[70, 30, 1], &[false, true, false], &members(&spec));
        assert_eq!(moves.len(), 14);
        assert!(moves.iter().all(|m| m.urgent && m.to == 1));
        // Two lanes left of three: the stranded miners split by the others' weights.
        let spec = vec![(0, None); 10].into_iter().chain(vec![(1, None); 5]).chain(vec![(2, None); 5]).collect::<Vec<_>>();
        let moves = plan(&[50, 25, 25], &[false, true, true], &members(&spec));
        let to1 = moves.iter().filter(|m| m.to == 1).count();
        assert_eq!((moves.len(), to1), (10, 5));
    }

    #[test]
    fn a_lane_that_comes_back_gets_its_part() {
        // All 20 on lane 1 after lane 0 was down; lane 0 (70 %) is back.
        let spec = vec![(1, Some(100.0)); 20];
        let moves = plan(&[70, 30], &[true, true], &members(&spec));
        let mut load = loads(2, &members(&spec));
        for m in &moves {
            load[m.from] -= 100.0;
            load[m.to] += 100.0;
        }
        assert!((load[0] - 1400.0).abs() <= TOLERANCE * 2000.0, "within the tolerance of its part: {load:?}");
        assert!(moves.len() >= 13 && moves.iter().all(|m| m.from == 1 && m.to == 0));
    }

    #[test]
    fn unmeasured_miners_count_as_the_mean() {
        let spec = [(0, Some(300.0)), (0, None), (1, None)];
        assert_eq!(loads(2, &members(&spec)), [600.0, 300.0]);
    }
}
