"""The widely copied digits autoencoder recipe that aeviz is measured against.

64-32-2-32-64 with sigmoid activations, pixels scaled to [0, 1], Adam, MSE,
batch size 8 (500 epochs in the original).
"""

from __future__ import annotations

import numpy as np


def recipe_autoencoder(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((64,))
    h = keras.layers.Dense(32, activation="sigmoid")(inputs)
    z = keras.layers.Dense(2, activation="sigmoid")(h)
    encoder = keras.Model(inputs, z)
    h = keras.layers.Dense(32, activation="sigmoid")(z)
    out = keras.layers.Dense(64, activation="sigmoid")(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer="adam", loss="mse")
    return model, encoder


def train_recipe(X: np.ndarray, epochs: int, seed: int = 0):
    """Train the recipe on pixels 0-16; returns the 2-D latent of X."""
    Xs = (X / 16.0).astype("float32")
    model, encoder = recipe_autoencoder(seed)
    model.fit(Xs, Xs, epochs=epochs, batch_size=8, shuffle=True, verbose=0)
    return np.asarray(encoder.predict(Xs, verbose=0))
