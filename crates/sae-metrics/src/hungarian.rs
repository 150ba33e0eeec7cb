//! Minimum-cost assignment (the Hungarian algorithm, in the shortest-augmenting-path form with
//! potentials), O(n²·m) for an `n × m` cost matrix with `n ≤ m`.

/// Assigns each of the `n` rows of a row-major `n × m` cost matrix (`n ≤ m`) to a distinct
/// column, minimising the total cost. Returns the column of each row, or `None` if `n > m` or
/// a cost is not finite.
pub fn assign_min_cost(cost: &[f64], n: usize, m: usize) -> Option<Vec<usize>> {
    assign_min_cost_with_progress(cost, n, m, |_| {})
}

/// [`assign_min_cost`], calling `progress(rows assigned)` after each row: a matching of tens of
/// thousands of rows takes a minute.
pub fn assign_min_cost_with_progress(cost: &[f64], n: usize, m: usize, mut progress: impl FnMut(usize)) -> Option<Vec<usize>> {
    if n > m || cost.len() != n * m || cost.iter().any(|c| !c.is_finite()) {
        return None;
    }
    if n == 0 {
        return Some(Vec::new());
    }
    // 1-based arrays: u (rows), v (columns) potentials; p[j] = row matched to column j.
    let inf = f64::INFINITY;
    let mut u = vec![0f64; n + 1];
    let mut v = vec![0f64; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0usize;
            for j in 1..=m {
                if !used[j] {
                    let cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
        progress(i);
    }
    let mut assignment = vec![0usize; n];
    for j in 1..=m {
        if p[j] != 0 {
            assignment[p[j] - 1] = j - 1;
        }
    }
    Some(assignment)
}
