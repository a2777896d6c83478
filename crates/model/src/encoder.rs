//! BERT and DistilBERT encoders and their sequence-classification heads, with Hugging Face
//! parameter names.

use candle_core::{Result, Tensor};

use crate::config::{Arch, EncoderConfig};
use crate::kernels::{self, Activation};
use crate::nn::{embed, param, Batch, Ctx, LayerNorm, Linear, Weights};

/// Every parameter of a sequence classifier (`with_head`) or bare encoder, with its shape, in
/// Hugging Face naming (`bert.` / `distilbert.` prefix on encoder weights).
pub fn parameter_shapes(
    cfg: &EncoderConfig,
    num_labels: usize,
    with_head: bool,
) -> Vec<(String, Vec<usize>)> {
    let h = cfg.hidden;
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let lin = |out: &mut Vec<(String, Vec<usize>)>, name: String, i: usize, o: usize| {
        out.push((format!("{name}.weight"), vec![o, i]));
        out.push((format!("{name}.bias"), vec![o]));
    };
    let ln = |out: &mut Vec<(String, Vec<usize>)>, name: String| {
        out.push((format!("{name}.weight"), vec![h]));
        out.push((format!("{name}.bias"), vec![h]));
    };
    let p = cfg.arch.prefix();
    // Embeddings: words, positions, token types (BERT only), then their layer norm.
    let mut tables = vec![
        ("word_embeddings", cfg.vocab_size),
        ("position_embeddings", cfg.max_positions),
    ];
    if cfg.arch == Arch::Bert {
        tables.push(("token_type_embeddings", cfg.type_vocab_size));
    }
    for (name, rows) in tables {
        out.push((format!("{p}.embeddings.{name}.weight"), vec![rows, h]));
    }
    ln(&mut out, format!("{p}.embeddings.LayerNorm"));
    match cfg.arch {
        Arch::Bert => {
            for l in 0..cfg.layers {
                let q = format!("{p}.encoder.layer.{l}");
                lin(&mut out, format!("{q}.attention.self.query"), h, h);
                lin(&mut out, format!("{q}.attention.self.key"), h, h);
                lin(&mut out, format!("{q}.attention.self.value"), h, h);
                lin(&mut out, format!("{q}.attention.output.dense"), h, h);
                ln(&mut out, format!("{q}.attention.output.LayerNorm"));
                lin(
                    &mut out,
                    format!("{q}.intermediate.dense"),
                    h,
                    cfg.intermediate,
                );
                lin(&mut out, format!("{q}.output.dense"), cfg.intermediate, h);
                ln(&mut out, format!("{q}.output.LayerNorm"));
            }
            if with_head {
                lin(&mut out, format!("{p}.pooler.dense"), h, h);
                lin(&mut out, "classifier".into(), h, num_labels);
            }
        }
        Arch::DistilBert => {
            for l in 0..cfg.layers {
                let q = format!("{p}.transformer.layer.{l}");
                lin(&mut out, format!("{q}.attention.q_lin"), h, h);
                lin(&mut out, format!("{q}.attention.k_lin"), h, h);
                lin(&mut out, format!("{q}.attention.v_lin"), h, h);
                lin(&mut out, format!("{q}.attention.out_lin"), h, h);
                ln(&mut out, format!("{q}.sa_layer_norm"));
                lin(&mut out, format!("{q}.ffn.lin1"), h, cfg.intermediate);
                lin(&mut out, format!("{q}.ffn.lin2"), cfg.intermediate, h);
                ln(&mut out, format!("{q}.output_layer_norm"));
            }
            if with_head {
                lin(&mut out, "pre_classifier".into(), h, h);
                lin(&mut out, "classifier".into(), h, num_labels);
            }
        }
    }
    out
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    /// q, k and v stacked (and packed) once, for inference ([`Encoder::prepare_inference`]).
    qkv: Option<Linear>,
    heads: usize,
    head_dim: usize,
    dropout: f32,
}

impl Attention {
    /// Multi-head self-attention; returns the concatenated context `(B, T, H)`.
    fn forward(&self, x: &Tensor, mask: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let qkv = self.qkv(x, ctx)?;
        kernels::attention(
            &qkv,
            mask,
            self.heads,
            self.scale(),
            ctx.dropout_args(self.dropout),
            ctx.train,
        )
    }

    /// Eval-mode attention from the first position only: the context `(B, 1, H)`.
    fn forward_first(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let qkv = self.qkv(x, &Ctx::eval())?;
        kernels::attention_first_query(&qkv, mask, self.heads, self.scale())
    }

    /// Queries, keys and values side by side, `(B, T, 3H)`.
    fn qkv(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        match &self.qkv {
            // Train mode stacks the parts afresh, so that gradients reach each of them.
            Some(qkv) if !ctx.train => qkv.forward(x),
            _ => Linear::stack(&[&self.q, &self.k, &self.v])?.forward(x),
        }
    }

    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
}

struct Layer {
    attn: Attention,
    attn_out: Linear,
    ln1: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    ln2: LayerNorm,
    /// BERT applies hidden dropout after the attention projection; DistilBERT does not.
    attn_out_dropout: bool,
}

/// A BERT or DistilBERT encoder (embeddings + transformer layers).
pub struct Encoder {
    cfg: EncoderConfig,
    word: Tensor,
    position: Tensor,
    token_type: Option<Tensor>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
}

impl Encoder {
    /// Builds the encoder from `w` (names with the `bert.` / `distilbert.` prefix).
    pub fn load(w: &Weights, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden;
        let eps = cfg.layer_norm_eps;
        let p = cfg.arch.prefix();
        let attention = |q: &str, k: &str, v: &str| -> Result<Attention> {
            Ok(Attention {
                q: Linear::load(w, q, h, h)?,
                k: Linear::load(w, k, h, h)?,
                v: Linear::load(w, v, h, h)?,
                qkv: None,
                heads: cfg.heads,
                head_dim: h / cfg.heads,
                dropout: cfg.attention_dropout,
            })
        };
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let layer = match cfg.arch {
                Arch::Bert => {
                    let q = format!("{p}.encoder.layer.{l}");
                    Layer {
                        attn: attention(
                            &format!("{q}.attention.self.query"),
                            &format!("{q}.attention.self.key"),
                            &format!("{q}.attention.self.value"),
                        )?,
                        attn_out: Linear::load(w, &format!("{q}.attention.output.dense"), h, h)?,
                        ln1: LayerNorm::load(
                            w,
                            &format!("{q}.attention.output.LayerNorm"),
                            h,
                            eps,
                        )?,
                        ff1: Linear::load(
                            w,
                            &format!("{q}.intermediate.dense"),
                            h,
                            cfg.intermediate,
                        )?,
                        ff2: Linear::load(w, &format!("{q}.output.dense"), cfg.intermediate, h)?,
                        ln2: LayerNorm::load(w, &format!("{q}.output.LayerNorm"), h, eps)?,
                        attn_out_dropout: true,
                    }
                }
                Arch::DistilBert => {
                    let q = format!("{p}.transformer.layer.{l}");
                    Layer {
                        attn: attention(
                            &format!("{q}.attention.q_lin"),
                            &format!("{q}.attention.k_lin"),
                            &format!("{q}.attention.v_lin"),
                        )?,
                        attn_out: Linear::load(w, &format!("{q}.attention.out_lin"), h, h)?,
                        ln1: LayerNorm::load(w, &format!("{q}.sa_layer_norm"), h, eps)?,
                        ff1: Linear::load(w, &format!("{q}.ffn.lin1"), h, cfg.intermediate)?,
                        ff2: Linear::load(w, &format!("{q}.ffn.lin2"), cfg.intermediate, h)?,
                        ln2: LayerNorm::load(w, &format!("{q}.output_layer_norm"), h, eps)?,
                        attn_out_dropout: false,
                    }
                }
            };
            layers.push(layer);
        }
        let token_type = match cfg.arch {
            Arch::Bert => Some(param(
                w,
                &format!("{p}.embeddings.token_type_embeddings.weight"),
                &[cfg.type_vocab_size, h],
            )?),
            Arch::DistilBert => None,
        };
        Ok(Self {
            cfg: cfg.clone(),
            word: param(
                w,
                &format!("{p}.embeddings.word_embeddings.weight"),
                &[cfg.vocab_size, h],
            )?,
            position: param(
                w,
                &format!("{p}.embeddings.position_embeddings.weight"),
                &[cfg.max_positions, h],
            )?,
            token_type,
            emb_ln: LayerNorm::load(w, &format!("{p}.embeddings.LayerNorm"), h, eps)?,
            layers,
        })
    }

    /// The config this encoder was built from.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Readies the encoder for eval-mode passes over weights that will not change: each
    /// layer's query, key and value weights stacked once instead of on every pass, and every
    /// weight packed for the AVX-512 products where the CPU has them. Never for a model
    /// being trained: the copies would not follow its updates.
    pub fn prepare_inference(&mut self) -> Result<()> {
        for layer in &mut self.layers {
            let a = &mut layer.attn;
            let mut qkv = Linear::stack(&[&a.q, &a.k, &a.v])?;
            qkv.pack()?;
            a.qkv = Some(qkv);
            layer.attn_out.pack()?;
            layer.ff1.pack()?;
            layer.ff2.pack()?;
        }
        Ok(())
    }

    /// Last hidden state `(B, T, H)`.
    pub fn forward(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        let mut x = self.embed(batch, ctx)?;
        for layer in &self.layers {
            let a = layer.attn.forward(&x, &batch.mask, ctx)?;
            x = self.finish_layer(layer, &a, &x, ctx)?;
        }
        Ok(x)
    }

    /// Last hidden state of the first token (`[CLS]`) only, `(B, H)`: what a classification
    /// head reads. In eval mode the last layer attends from that token alone and runs its
    /// output projection, feed-forward and norms on one row per sequence instead of T (the
    /// keys and values still come from every token): the same numbers for an eighth less
    /// arithmetic in a 6-layer model. Train mode runs [`Encoder::forward`] in full.
    pub fn forward_first(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        let Some((last, rest)) = self.layers.split_last().filter(|_| !ctx.train) else {
            return self.forward(batch, ctx)?.narrow(1, 0, 1)?.squeeze(1);
        };
        let mut x = self.embed(batch, ctx)?;
        for layer in rest {
            let a = layer.attn.forward(&x, &batch.mask, ctx)?;
            x = self.finish_layer(layer, &a, &x, ctx)?;
        }
        let a = last.attn.forward_first(&x, &batch.mask)?;
        let x0 = x.narrow(1, 0, 1)?.contiguous()?;
        self.finish_layer(last, &a, &x0, ctx)?.squeeze(1)
    }

    /// Token, position (and token-type) embeddings, normalised, with dropout in train mode.
    fn embed(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        let (_, t) = batch.ids.dims2()?;
        if t > self.cfg.max_positions {
            candle_core::bail!(
                "sequence of {t} tokens exceeds {} positions",
                self.cfg.max_positions
            );
        }
        let mut x = embed(&self.word, &batch.ids)?;
        x = x.broadcast_add(&self.position.narrow(0, 0, t)?)?;
        if let Some(tt) = &self.token_type {
            x = x.broadcast_add(&tt.narrow(0, 0, 1)?)?;
        }
        x = self.emb_ln.forward(&x, ctx)?;
        ctx.dropout(&x, self.cfg.hidden_dropout)
    }

    /// The rest of a layer after attention: output projection, residual and norm, then the
    /// feed-forward block with its residual and norm. `a` is the attention context and `x`
    /// the layer's input, for the same rows.
    fn finish_layer(&self, layer: &Layer, a: &Tensor, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        let p = if layer.attn_out_dropout {
            self.cfg.hidden_dropout
        } else {
            0.0
        };
        let a = layer
            .attn_out
            .forward_act(a, Activation::Identity, p, ctx)?;
        let x1 = layer.ln1.forward(&(a + x)?, ctx)?;
        let f = layer.ff1.forward_act(&x1, Activation::Gelu, 0.0, ctx)?;
        let f = layer
            .ff2
            .forward_act(&f, Activation::Identity, self.cfg.hidden_dropout, ctx)?;
        layer.ln2.forward(&(f + x1)?, ctx)
    }
}

/// Encoder plus sequence-classification head (`BertForSequenceClassification` /
/// `DistilBertForSequenceClassification`).
pub struct SequenceClassifier {
    encoder: Encoder,
    /// BERT pooler or DistilBERT pre_classifier.
    pre: Linear,
    classifier: Linear,
}

impl SequenceClassifier {
    /// Builds the model from a complete set of weights.
    pub fn load(w: &Weights, cfg: &EncoderConfig, num_labels: usize) -> Result<Self> {
        let h = cfg.hidden;
        let pre = match cfg.arch {
            Arch::Bert => Linear::load(w, "bert.pooler.dense", h, h)?,
            Arch::DistilBert => Linear::load(w, "pre_classifier", h, h)?,
        };
        Ok(Self {
            encoder: Encoder::load(w, cfg)?,
            pre,
            classifier: Linear::load(w, "classifier", h, num_labels)?,
        })
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// [`Encoder::prepare_inference`] for the encoder and the head: for a model that only
    /// predicts.
    pub fn prepare_inference(&mut self) -> Result<()> {
        self.encoder.prepare_inference()?;
        self.pre.pack()?;
        self.classifier.pack()
    }

    /// Logits `(B, num_labels)`.
    pub fn forward(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        let pooled = self.features(batch, ctx)?;
        let pooled = ctx.dropout(&pooled, self.encoder.cfg.classifier_dropout)?;
        self.classifier.forward(&pooled)
    }

    /// What the classification layer reads, `(B, hidden)`: the BERT pooler's output or
    /// DistilBERT's pre-classifier, before dropout.
    pub fn features(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        let cls = self.encoder.forward_first(batch, ctx)?;
        Ok(match self.encoder.cfg.arch {
            Arch::Bert => self.pre.forward(&cls)?.tanh()?,
            Arch::DistilBert => self.pre.forward(&cls)?.relu()?,
        })
    }

    /// Logits of features from [`Self::features`] (eval mode: no dropout).
    pub fn logits_of(&self, features: &Tensor) -> Result<Tensor> {
        self.classifier.forward(features)
    }

    /// Class probabilities `(B, num_labels)`.
    pub fn probabilities(&self, batch: &Batch, ctx: &Ctx) -> Result<Tensor> {
        ctx.softmax(&self.forward(batch, ctx)?)
    }
}
