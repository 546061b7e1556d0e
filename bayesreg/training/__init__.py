"""The one training loop every iterative method shares: its settings (:mod:`trainer`), the
compiled loop over rows in memory (:mod:`loop`) and over rows read by chunks
(:mod:`streamed`), the evidence hook that learns σ and the prior scales between rounds
(:mod:`evidence`), and the validation grid over σ (:mod:`noise_grid`)."""
