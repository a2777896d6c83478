//! What `calltype suggest` picks, apart from any I/O: the calls a person should label next.
//!
//! - **Without a model, coverage.** Each call is one unit vector: the sentence embedding of
//!   its most distinctive window ([`distinctive_window`]: the one least like the average of
//!   every window of every call, since greetings, holds and surveys sound alike in all
//!   calls). k-means with k = N groups the calls ([`coverage_picks`]); each group gives the
//!   call nearest its centre, the largest groups first, so that every kind of call appears
//!   early and none twice.
//! - **With a model, doubt.** The calls whose two most probable labels are closest
//!   ([`top_two`]), taken in turns from each predicted label ([`doubt_picks`]) so that one
//!   confusable pair of labels cannot fill the list.
//!
//! The k-means (k-means++ seeding, Lloyd's iterations on unit vectors) is the forty lines
//! below rather than linfa and ndarray: it runs once over at most a few thousand vectors.

use model::rng::Rng;

/// Lloyd iterations of [`coverage_picks`]; the assignments settle well before on a few
/// thousand calls.
const ITERATIONS: usize = 25;

/// Dot product (the cosine of two unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The mean of `vectors`, scaled to length 1 (zeros when there are none).
pub fn centre<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for v in vectors {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        for (s, &x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let norm = dot(&sum, &sum).sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|s| *s /= norm);
    }
    sum
}

/// The window (index into `windows`) least like `common`, the centre of all calls' windows:
/// the part of the call that is its own rather than the talk every call has. The first on
/// ties; 0 for a call of one window.
pub fn distinctive_window(windows: &[Vec<f32>], common: &[f32]) -> usize {
    let mut best = 0;
    for (i, w) in windows.iter().enumerate() {
        if dot(w, common) < dot(&windows[best], common) {
            best = i;
        }
    }
    best
}

/// Up to `n` distinct indices of `points` (unit vectors) that cover them: k-means with
/// `k = n`, seeded, then the member of each cluster nearest its centre, the largest clusters
/// first; if clusters came out empty, the points farthest from every pick fill the rest.
pub fn coverage_picks(points: &[Vec<f32>], n: usize, seed: u64) -> Vec<usize> {
    let k = n.min(points.len());
    if k == 0 {
        return Vec::new();
    }
    let mut rng = Rng::new(seed);
    let mut centres = vec![points[rng.below(points.len())].clone()];
    while centres.len() < k {
        // k-means++: the next centre drawn with probability ∝ squared distance to the nearest.
        let d2: Vec<f64> = points
            .iter()
            .map(|p| {
                let near = centres.iter().map(|c| dot(p, c)).fold(f32::MIN, f32::max);
                f64::from((2.0 - 2.0 * near).max(0.0))
            })
            .collect();
        let total: f64 = d2.iter().sum();
        if total <= 0.0 {
            break; // every point sits on a centre already
        }
        let mut r = rng.uniform() * total;
        let mut pick = d2.len() - 1;
        for (i, &d) in d2.iter().enumerate() {
            if r < d {
                pick = i;
                break;
            }
            r -= d;
        }
        centres.push(points[pick].clone());
    }
    let nearest = |p: &[f32], centres: &[Vec<f32>]| -> usize {
        let mut best = 0;
        for (j, c) in centres.iter().enumerate() {
            if dot(p, c) > dot(p, &centres[best]) {
                best = j;
            }
        }
        best
    };
    let mut assign = vec![0; points.len()];
    for _ in 0..ITERATIONS {
        let next: Vec<usize> = points.iter().map(|p| nearest(p, &centres)).collect();
        let settled = next == assign;
        assign = next;
        for (j, c) in centres.iter_mut().enumerate() {
            let members = points
                .iter()
                .zip(&assign)
                .filter(|(_, &a)| a == j)
                .map(|(p, _)| p.as_slice());
            let m = centre(members);
            if !m.is_empty() {
                *c = m;
            }
        }
        if settled {
            break;
        }
    }
    // Clusters by size, largest first (then by index, for a stable order).
    let mut sizes: Vec<(usize, usize)> = (0..centres.len())
        .map(|j| (assign.iter().filter(|&&a| a == j).count(), j))
        .filter(|&(size, _)| size > 0)
        .collect();
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picks: Vec<usize> = Vec::with_capacity(k);
    for (_, j) in sizes {
        let member = (0..points.len())
            .filter(|&i| assign[i] == j)
            .max_by(|&a, &b| {
                dot(&points[a], &centres[j])
                    .total_cmp(&dot(&points[b], &centres[j]))
                    .then(b.cmp(&a))
            })
            .expect("a non-empty cluster");
        picks.push(member);
    }
    while picks.len() < k {
        let far = (0..points.len())
            .filter(|i| !picks.contains(i))
            .min_by(|&a, &b| {
                let near = |i: usize| {
                    picks
                        .iter()
                        .map(|&p| dot(&points[i], &points[p]))
                        .fold(f32::MIN, f32::max)
                };
                near(a).total_cmp(&near(b)).then(a.cmp(&b))
            })
            .expect("fewer picks than points");
        picks.push(far);
    }
    picks
}

/// The most probable label's index, its probability, and its margin over the second.
pub fn top_two(probs: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > probs[best] {
            best = i;
        }
    }
    let second = probs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &p)| p)
        .fold(0f32, f32::max);
    let top = probs.get(best).copied().unwrap_or(0.0);
    (best, top, top - second)
}

/// Up to `n` indices, the smallest margins first, in turns from each predicted label
/// (`labels[i]` the label call `i` is predicted, `margins[i]` its margin): the label whose
/// least sure call is the least sure goes first in every turn.
pub fn doubt_picks(labels: &[usize], margins: &[f32], n: usize) -> Vec<usize> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: std::collections::BTreeMap<usize, usize> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        let g = *group_of.entry(l).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    for g in &mut groups {
        g.sort_by(|&a, &b| margins[a].total_cmp(&margins[b]).then(a.cmp(&b)));
    }
    groups.sort_by(|a, b| {
        margins[a[0]]
            .total_cmp(&margins[b[0]])
            .then(a[0].cmp(&b[0]))
    });
    let mut picks = Vec::with_capacity(n.min(labels.len()));
    for turn in 0.. {
        let before = picks.len();
        for g in &groups {
            if picks.len() == n {
                return picks;
            }
            if let Some(&i) = g.get(turn) {
                picks.push(i);
            }
        }
        if picks.len() == before {
            break;
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        centre([v])
    }

    #[test]
    fn coverage_takes_one_call_from_each_group_largest_first() {
        // Three tight groups of 6, 3 and 2 calls around three directions.
        let mut points = Vec::new();
        for i in 0..6 {
            points.push(unit(&[1.0, 0.02 * i as f32, 0.0]));
        }
        for i in 0..3 {
            points.push(unit(&[0.0, 1.0, 0.03 * i as f32]));
        }
        for i in 0..2 {
            points.push(unit(&[0.02 * i as f32, 0.0, 1.0]));
        }
        for seed in 0..20 {
            let picks = coverage_picks(&points, 3, seed);
            assert_eq!(picks.len(), 3);
            let group = |i: usize| {
                if i < 6 {
                    0
                } else if i < 9 {
                    1
                } else {
                    2
                }
            };
            let groups: Vec<usize> = picks.iter().map(|&i| group(i)).collect();
            assert_eq!(groups, [0, 1, 2], "seed {seed}: picks {picks:?}");
        }
        // More picks than groups: still distinct, and never more than the points.
        let picks = coverage_picks(&points, 8, 1);
        let mut sorted = picks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!((picks.len(), sorted.len()), (8, 8), "{picks:?}");
        assert_eq!(coverage_picks(&points, 50, 1).len(), points.len());
        assert!(coverage_picks(&[], 3, 1).is_empty());
        // Identical points: k-means++ stops early, the rest is filled.
        let same = vec![unit(&[1.0, 1.0]); 4];
        assert_eq!(coverage_picks(&same, 3, 7).len(), 3);
    }

    #[test]
    fn the_distinctive_window_is_the_one_unlike_the_common_talk() {
        let common = unit(&[1.0, 0.0]);
        let windows = vec![unit(&[1.0, 0.1]), unit(&[0.2, 1.0]), unit(&[1.0, -0.1])];
        assert_eq!(distinctive_window(&windows, &common), 1);
        assert_eq!(distinctive_window(&windows[..1], &common), 0);
    }

    #[test]
    fn doubt_takes_the_least_sure_in_turns_per_label() {
        assert_eq!(top_two(&[0.1, 0.6, 0.3]), (1, 0.6, 0.3));
        assert_eq!(top_two(&[1.0]), (0, 1.0, 1.0));
        // Label 0's calls are all less sure than label 1's, but the turns alternate.
        let labels = [0, 0, 0, 1, 1, 2];
        let margins = [0.05, 0.01, 0.02, 0.5, 0.3, 0.9];
        assert_eq!(doubt_picks(&labels, &margins, 4), [1, 4, 5, 2]);
        assert_eq!(doubt_picks(&labels, &margins, 10), [1, 4, 5, 2, 3, 0]);
        assert!(doubt_picks(&labels, &margins, 0).is_empty());
    }
}
