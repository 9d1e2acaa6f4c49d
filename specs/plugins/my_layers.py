"""Custom layers for specs/custom_dense.yaml (load with --plugin specs/plugins/my_layers.py).

CustomDense is the basic re-implementation of Dense from the Keras
functional-API guide ("extend the API using custom layers"), with
`get_config` so that models using it can be serialized. It uses keras.ops
(not tf.matmul) so it runs on any Keras 3 backend.
"""

import keras


class CustomDense(keras.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {**super().get_config(), "units": self.units}
