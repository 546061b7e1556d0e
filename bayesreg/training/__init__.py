"""The one training loop every iterative method shares: its settings (:mod:`trainer`), the
compiled loop over rows in memory (:mod:`loop`) and over rows read by chunks
(:mod:`streamed`), the evidence hook that learns σ and the prior scales between rounds
(:mod:`evidence`), the validation grid over σ (:mod:`noise_grid`), M networks trained
together (:mod:`members`: an ensemble's members, MultiSWAG's pretrainings) and SWAG's SGD
phase on the loop (:mod:`swag_phase`)."""
