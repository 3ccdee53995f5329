"""Invalid BAMSProd arguments: one table for the tf.keras classes (tests/library) and the
Keras 3 class (tests/keras3), which share their checks and messages. No TensorFlow here."""

import math

# (argument, invalid value, error, text the message must contain after "argument=")
INVALID = [
    ("learning_rate", 0.0, ValueError, "0.0"),
    ("learning_rate", -0.01, ValueError, "-0.01"),
    ("learning_rate", math.nan, ValueError, "nan"),
    ("learning_rate", math.inf, ValueError, "inf"),
    ("epsilon", math.inf, ValueError, "inf"),
    ("gamma", math.inf, ValueError, "inf"),
    ("bound_target", math.inf, ValueError, "inf"),
    ("learning_rate", "0.01", TypeError, "'0.01'"),
    ("learning_rate", None, TypeError, "None"),
    ("beta_1", 1.0, ValueError, "1.0"),
    ("beta_1", -0.1, ValueError, "-0.1"),
    ("beta_1", 1.5, ValueError, "1.5"),
    ("beta_1", "0.9", TypeError, "'0.9'"),
    ("beta_2", 1.0, ValueError, "1.0"),
    ("beta_2", -0.5, ValueError, "-0.5"),
    ("beta_2", math.nan, ValueError, "nan"),
    ("beta_2", None, TypeError, "None"),
    ("beta_2", [0.999], TypeError, "[0.999]"),
    ("epsilon", -1e-8, ValueError, "-1e-08"),
    ("epsilon", "1e-7", TypeError, "'1e-7'"),
    ("gamma", 0.0, ValueError, "0.0"),
    ("gamma", -1.0, ValueError, "-1.0"),
    ("gamma", True, TypeError, "True"),
    ("bound_target", 0.0, ValueError, "0.0"),
    ("bound_target", -1.0, ValueError, "-1.0"),
    ("bound_target", "median", ValueError, "'median'"),
    ("bound_target", "", ValueError, "''"),
    ("bound_target", True, TypeError, "True"),
    ("bound_target", [1.0], TypeError, "[1.0]"),
    ("lr_decay", "linear", ValueError, "'linear'"),
    ("lr_decay", "SQRT", ValueError, "'SQRT'"),
    ("lr_decay", 1, ValueError, "1"),
    ("bias_correction", "yes", TypeError, "'yes'"),
    ("bias_correction", 1, TypeError, "1"),
    ("bias_correction", None, TypeError, "None"),
]
