"""From panoptic labels to training batches: targets (centers, offsets, weights), augmentation and
the tf.data pipeline (``panoptic_deeplab.data.pipeline.make_dataset``)."""
