"""The Keras training wrapper: ``fit`` on (features, targets) batches with the panoptic loss.

The network stays the plain functional model from ``build_model`` (what bundles save); this
wrapper only adds a ``train_step``, so ``Model.fit`` drives the loop, callbacks, XLA
(``jit_compile``) and tf.distribute.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ..losses import LOSS_TERMS, PanopticLoss


class PanopticTrainingModel(keras.Model):
    def __init__(self, network: keras.Model, loss: PanopticLoss, **kwargs):
        super().__init__(name="panoptic_training", **kwargs)
        self.network = network
        self.panoptic_loss = loss
        # The functional network is built already; saying so stops fit() from tracing a symbolic
        # build call, which fails on distributed (PerReplica) batches.
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15's TF trainer pre-builds by calling strategy.reduce("MEAN", batch) on the first
        # distributed batch, which fails for nested (dict) batches under
        # MultiWorkerMirroredStrategy. Nothing needs building here: the network is built, the
        # optimizer is built before fit, and no compiled losses or metrics exist.
        return

    def call(self, inputs, training=False):
        image = inputs["image"] if isinstance(inputs, dict) else inputs
        return self.network(image, training=training)

    def train_step(self, data):
        features, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            outputs = self(features, training=True)
            terms = self.panoptic_loss(targets, outputs)
            # Replica gradients are summed, so each replica contributes loss / replicas (deeplab2
            # trainer.py); the optimizer's loss scaling (mixed float16) comes on top.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(terms["loss"] / float(replicas))
        logs = {key: terms[key] for key in ("loss", *LOSS_TERMS)}
        logs["learning_rate"] = tf.identity(
            tf.cast(self.optimizer.learning_rate, tf.float32)
        )  # this step's
        variables = self.network.trainable_variables
        with tf.control_dependencies([logs["learning_rate"]]):
            gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces logs across workers with strategy.reduce("MEAN", axis=0), which needs a
            # batch axis: give each scalar one, and the reduction returns a scalar again.
            logs = {key: tf.reshape(value, [1]) for key, value in logs.items()}
        return logs
