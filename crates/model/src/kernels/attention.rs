//! Multi-head self-attention over a packed QKV projection, forward and backward, and the
//! eval-mode pass for the first position alone.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::dropout::drop_in_place;
use super::gemm::{matmul, Out, View};
use super::softmax::{softmax_grad_rows, softmax_rows};
use super::{slice, tensor, with_data};
use crate::packed::{self, PackedMatrix};
use crate::simd;

struct AttentionOp {
    heads: usize,
    scale: f32,
    /// Dropout on the attention probabilities: (p, seed).
    dropout: (f32, u64),
    /// Keep the probabilities for backward.
    train: bool,
    probs: std::sync::Mutex<Vec<f32>>,
}

impl AttentionOp {
    /// (B, T, H) from qkv (B, T, 3H) and a mask (B, 1, 1, T).
    fn dims(qkv: &Layout, mask: &Layout) -> Result<(usize, usize, usize)> {
        let (qd, md) = (qkv.dims(), mask.dims());
        if qd.len() != 3 || qd[2] % 3 != 0 || md != [qd[0], 1, 1, qd[1]] {
            bail!("attention wants qkv (B, T, 3H) and mask (B, 1, 1, T), got {qd:?} and {md:?}");
        }
        Ok((qd[0], qd[1], qd[2] / 3))
    }

    /// Applies the dropout mask of block `bh` (a T×T probability block) in place.
    #[inline]
    fn drop_block(&self, block: &mut [f32], bh: usize) {
        let (p, seed) = self.dropout;
        if p > 0.0 {
            drop_in_place(block, p, seed, (bh * block.len()) as u64);
        }
    }
}

impl CustomOp2 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (bsz, t, h) = Self::dims(l1, l2)?;
        let (qkv, mask) = (slice(s1, l1)?, slice(s2, l2)?);
        let heads = self.heads;
        let d = h / heads;
        // Chosen here, on the caller's thread, for every task. AVX-512 only: on AVX2 (and NEON,
        // unmeasured) the gemm crate runs these per-head products faster than the 6 × 16 tile
        // (0.75-0.8× of it, `BENCH_ISA=avx2` matmul example; `kernels::packs`).
        let isa = packed::isa().filter(|&isa| isa == packed::Isa::Avx512);
        let use_packed = isa.is_some();
        // The packed products write every element of ctx (each head its d columns of every
        // row) without reading it, so it need not be zeroed first.
        let mut ctx = if use_packed {
            Vec::with_capacity(bsz * t * h)
        } else {
            vec![0f32; bsz * t * h]
        };
        let mut probs = if self.train {
            vec![0f32; bsz * heads * t * t]
        } else {
            Vec::new()
        };
        let out = Out(ctx.as_mut_ptr());
        let stash = Out(probs.as_mut_ptr());
        let qkv_v = View::rows(qkv, 3 * h);
        let train = self.train;
        (0..bsz * heads).into_par_iter().for_each_init(
            || {
                let own = if train { Vec::new() } else { vec![0f32; t * t] };
                let dropped = if self.dropout.0 > 0.0 {
                    vec![0f32; t * t]
                } else {
                    Vec::new()
                };
                (
                    own,
                    dropped,
                    PackedMatrix::default(),
                    PackedMatrix::default(),
                )
            },
            |(own, dropped, kp, vp), bh| {
                let (bi, hi) = (bh / heads, bh % heads);
                let base = bi * t * 3 * h;
                let p: &mut [f32] = if train {
                    // SAFETY: block bh of the stash belongs to this task alone.
                    unsafe { std::slice::from_raw_parts_mut(stash.ptr().add(bh * t * t), t * t) }
                } else {
                    own
                };
                // This task's output: columns hi*d..(hi+1)*d of batch bi's rows of ctx.
                let dst = out.ptr().wrapping_add(bi * t * h + hi * d);
                if let Some(isa) = isa {
                    // Rows of batch bi: queries, keys and values of head hi side by side.
                    let rows = &qkv[base..base + t * 3 * h];
                    kp.pack_transposed(&rows[h + hi * d..], t, d, 3 * h);
                    vp.pack(&rows[2 * h + hi * d..], t, d, 3 * h);
                    // SAFETY: isa from isa(); the queries are T rows of d at stride 3H, p is
                    // T×T.
                    unsafe {
                        let q = rows[hi * d..].as_ptr();
                        packed::matmul(isa, t, q, 3 * h, kp, p.as_mut_ptr(), t, false, false)
                    };
                } else {
                    let q = qkv_v.at(base + hi * d);
                    let k = qkv_v.at(base + h + hi * d);
                    // SAFETY: q, k address T×d blocks of qkv; p is T×T.
                    unsafe { matmul(t, t, d, p.as_mut_ptr(), t, q, k.t(), false, false) };
                }
                softmax_rows(p, &mask[bi * t..(bi + 1) * t], self.scale);
                let pd: &[f32] = if self.dropout.0 > 0.0 {
                    dropped.copy_from_slice(p);
                    self.drop_block(dropped, bh);
                    dropped
                } else {
                    p
                };
                if let Some(isa) = isa {
                    // SAFETY: isa from isa(); pd is T×T and dst T rows of d at stride H, this
                    // task's alone.
                    unsafe { packed::matmul(isa, t, pd.as_ptr(), t, vp, dst, h, false, false) };
                } else {
                    let v = qkv_v.at(base + 2 * h + hi * d);
                    // SAFETY: as above.
                    unsafe { matmul(t, d, t, dst, h, View::rows(pd, t), v, false, false) };
                }
            },
        );
        if use_packed {
            // SAFETY: every task has written its part; together they cover ctx.
            unsafe { ctx.set_len(bsz * t * h) };
        }
        if train {
            *self.probs.lock().expect("attention stash") = probs;
        }
        Ok((CpuStorage::F32(ctx), Shape::from((bsz, t, h))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        _mask: &Tensor,
        _ctx: &Tensor,
        dctx: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (bsz, t, h3) = qkv.dims3()?;
        let h = h3 / 3;
        let heads = self.heads;
        let d = h / heads;
        let probs = std::mem::take(&mut *self.probs.lock().expect("attention stash"));
        if probs.len() != bsz * heads * t * t {
            bail!("attention: backward without a train-mode forward");
        }
        let dqkv = with_data(qkv, |qkv| {
            with_data(dctx, |dc| {
                let mut dqkv = vec![0f32; qkv.len()];
                let out = Out(dqkv.as_mut_ptr());
                let qkv_v = View::rows(qkv, 3 * h);
                let dc_v = View::rows(dc, h);
                (0..bsz * heads).into_par_iter().for_each_init(
                    || (vec![0f32; t * t], vec![0f32; t * t]),
                    |(pd, dp), bh| {
                        let (bi, hi) = (bh / heads, bh % heads);
                        let base = bi * t * 3 * h;
                        let q = qkv_v.at(base + hi * d);
                        let k = qkv_v.at(base + h + hi * d);
                        let v = qkv_v.at(base + 2 * h + hi * d);
                        let g = dc_v.at(bi * t * h + hi * d);
                        let p = &probs[bh * t * t..(bh + 1) * t * t];
                        pd.copy_from_slice(p);
                        self.drop_block(pd, bh);
                        // SAFETY: each task writes the q, k and v columns of its own head
                        // in batch bi's rows of dqkv; reads stay within qkv, dctx, p.
                        unsafe {
                            let dst = out.ptr().add(base + hi * d);
                            // dV = Pdᵀ · dC
                            matmul(
                                t,
                                d,
                                t,
                                dst.add(2 * h),
                                3 * h,
                                View::rows(pd, t).t(),
                                g,
                                false,
                                false,
                            );
                            // dPd = dC · Vᵀ
                            matmul(t, t, d, dp.as_mut_ptr(), t, g, v.t(), false, false);
                        }
                        // dP = dropout'(dPd); dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
                        self.drop_block(dp, bh);
                        softmax_grad_rows(dp, p, t, self.scale);
                        // SAFETY: as above.
                        unsafe {
                            let dst = out.ptr().add(base + hi * d);
                            // dQ = dS · K ; dK = dSᵀ · Q
                            matmul(t, d, t, dst, 3 * h, View::rows(dp, t), k, false, false);
                            matmul(
                                t,
                                d,
                                t,
                                dst.add(h),
                                3 * h,
                                View::rows(dp, t).t(),
                                q,
                                false,
                                false,
                            );
                        }
                    },
                );
                Ok(dqkv)
            })
        })?;
        Ok((Some(tensor(dqkv, qkv.shape())?), None))
    }
}

/// Multi-head self-attention `softmax(Q Kᵀ · scale + mask) V` per head, with dropout `(p,
/// seed)` on the probabilities, over a packed `qkv` `(B, T, 3H)` (queries, keys, values side
/// by side, heads contiguous within each) and an additive mask `(B, 1, 1, T)`; gives the
/// context `(B, T, H)`. Heads run in parallel; the T×T scores exist one head at a time in
/// eval mode, and are kept (probabilities only) for backward in train mode.
pub fn attention(
    qkv: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f64,
    dropout: (f32, u64),
    train: bool,
) -> Result<Tensor> {
    qkv.contiguous()?.apply_op2(
        &mask.contiguous()?,
        AttentionOp {
            heads,
            scale: scale as f32,
            dropout,
            train,
            probs: std::sync::Mutex::new(Vec::new()),
        },
    )
}

/// Eval-mode attention from the first position of each sequence only: the context `(B, 1,
/// H)` that [`attention`] gives at position 0, over the same packed `qkv` `(B, T, 3H)` and
/// mask `(B, 1, 1, T)`. No dropout, no backward.
pub fn attention_first_query(
    qkv: &Tensor,
    mask: &Tensor,
    heads: usize,
    scale: f64,
) -> Result<Tensor> {
    let (bsz, t, h3) = qkv.dims3()?;
    let h = h3 / 3;
    let d = h / heads;
    if h3 % 3 != 0 || mask.dims() != [bsz, 1, 1, t] {
        bail!("attention wants qkv (B, T, 3H) and mask (B, 1, 1, T)");
    }
    let ctx = with_data(qkv, |qkv| {
        with_data(mask, |mask| {
            let mut ctx = vec![0f32; bsz * h];
            ctx.par_chunks_mut(h).enumerate().for_each(|(bi, out)| {
                let rows = &qkv[bi * t * h3..(bi + 1) * t * h3];
                let mut p = vec![0f32; t];
                for hi in 0..heads {
                    let q = &rows[hi * d..(hi + 1) * d];
                    for (j, s) in p.iter_mut().enumerate() {
                        let k = &rows[j * h3 + h + hi * d..j * h3 + h + (hi + 1) * d];
                        *s = simd::dot(q, k);
                    }
                    softmax_rows(&mut p, &mask[bi * t..(bi + 1) * t], scale as f32);
                    let o = &mut out[hi * d..(hi + 1) * d];
                    for (j, &pj) in p.iter().enumerate() {
                        let v = &rows[j * h3 + 2 * h + hi * d..j * h3 + 2 * h + (hi + 1) * d];
                        for (x, &vv) in o.iter_mut().zip(v) {
                            *x += pj * vv;
                        }
                    }
                }
            });
            Ok(ctx)
        })
    })?;
    Tensor::from_vec(ctx, (bsz, 1, h), qkv.device())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var, D};

    use super::*;
    use crate::kernels::test_support::{close, grads, mask_of, rand};

    #[test]
    fn attention_matches_primitives_with_padding_and_dropout() {
        let (bsz, t, heads, d) = (2, 6, 3, 4);
        let h = heads * d;
        let qkv = Var::from_tensor(&rand(&[bsz, t, 3 * h], 11)).unwrap();
        let lens = [6usize, 4];
        let mut m = Vec::new();
        for &l in &lens {
            m.extend((0..t).map(|i| if i < l { 0f32 } else { f32::MIN }));
        }
        let mask = Tensor::from_vec(m, (bsz, 1, 1, t), &Device::Cpu).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        for p in [0.0f32, 0.25] {
            let fused = attention(&qkv, &mask, heads, scale, (p, 5), true).unwrap();
            let part = |i: usize| {
                qkv.narrow(2, i * h, h)
                    .unwrap()
                    .reshape((bsz, t, heads, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            };
            let (q, k, v) = (part(0), part(1), part(2));
            let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale)
                .unwrap()
                .broadcast_add(&mask)
                .unwrap();
            let max = scores.max_keepdim(D::Minus1).unwrap().detach();
            let e = scores.broadcast_sub(&max).unwrap().exp().unwrap();
            let mut probs = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
            if p > 0.0 {
                probs = (probs * mask_of(&[bsz, heads, t, t], p, 5)).unwrap();
            }
            let reference = probs
                .matmul(&v)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .reshape((bsz, t, h))
                .unwrap();
            close(&fused, &reference, 1e-5, &format!("p={p} forward"));
            let gf = grads(&[&qkv], &fused, 12);
            let gr = grads(&[&qkv], &reference, 12);
            close(&gf[0], &gr[0], 1e-4, &format!("p={p} gradient"));
        }
        // Eval mode (nothing kept) gives the same context.
        let eval = attention(
            &qkv.as_tensor().detach(),
            &mask,
            heads,
            scale,
            (0.0, 0),
            false,
        )
        .unwrap();
        let train = attention(&qkv, &mask, heads, scale, (0.0, 0), true).unwrap();
        close(&eval, &train, 0.0, "eval vs train");
    }
}
