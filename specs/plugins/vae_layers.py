"""Custom layers for specs/vae.yaml (load with --plugin specs/plugins/vae_layers.py).

Sampling is the reparameterisation trick of the keras.io example
"Variational AutoEncoder": given [z_mean, z_log_var] it returns
z = z_mean + exp(z_log_var / 2) * epsilon, epsilon ~ N(0, 1), so that
gradients flow through z_mean and z_log_var. Outside training (predict,
evaluate) it returns z_mean itself, so that predictions are deterministic
(the keras.io layer samples in both cases). It also adds the KL divergence
between N(z_mean, exp(z_log_var)) and N(0, 1) to the model's losses
(`add_loss`), which the example computes in its own `train_step`: the spec's
`compile.loss` is then only the reconstruction loss.

The KL term is summed over the latent dimensions and averaged over the
batch, as in the example, and multiplied by `kl_weight`: Keras's
`binary_crossentropy` averages over the pixels where the example sums them,
so a spec using it sets kl_weight = 1 / (number of pixels) to keep the
example's balance between the two terms.
"""

import keras
from keras import ops


class Sampling(keras.layers.Layer):
    def __init__(self, kl_weight=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        self.add_loss(self.kl_weight * ops.mean(ops.sum(kl, axis=1)))
        if not training:
            return z_mean
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}
