"""What ships with the product (the demo model bundle), installed as ``panoptic_deeplab.assets``."""
