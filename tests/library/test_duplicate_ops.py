"""tf-keras' own ``test_duplicate_ops``, adapted to BAMSProd (#28 item 18).

Every hyperparameter and per-step scalar is read or computed once per step and (device,
dtype), as ``_prepare_local`` does for Keras' Adam, never once per variable. The test and
its helpers are tf-keras' (``tf_keras/optimizers/legacy/optimizer_v2_test.py``,
``OptimizerCoefficientTest.test_duplicate_ops``, Apache License 2.0, copyright The
TensorFlow Authors), shortened and ported to pytest: a graph-mode model of weak learners
(10 here, 50 in tf-keras, to keep the test short; embeddings, so sparse updates too, and
dense layers) is updated once under the ``debug_apply`` name scope; an op that appears
once per learner (10 or more times, after unifying identical inputs) inside that scope is
a duplicate. Keras' legacy Adam passes, as the control.
"""

from __future__ import annotations

import collections

import pytest
import tensorflow as tf

from larq_bamsprod import BAMSProd, fast, legacy

_NUM_LEARNERS = 10
APPLY_SCOPE = "debug_apply"
ALLOWLIST = [
    # tf-keras: optimizer_v2._deduplicate_indexed_slices slices shape(unique_indices)[0],
    # which expands to [0:1:1], three constants per sparse update.
    ("embeddings/strided_slice/stack", "Const"),
]


def _inputs(op):
    op_inputs = list(op.inputs) + op.control_inputs
    names = [i.name for i in op_inputs]
    return [getattr(i, "op", i) for i in op_inputs], names


def _strip_name(node):
    if "Placeholder" not in node.op:
        node.name = ""


def _topological_sort(graph):
    operations = graph.get_operations()
    sources, result = [], []
    inputs, outputs = {}, collections.defaultdict(set)
    for op in operations:
        op_inputs = _inputs(op)[0]
        if not op_inputs:
            sources.append(op)
        inputs[op] = set(op_inputs)
        for i in op_inputs:
            outputs[i].add(op)
    while sources:
        op = sources.pop()
        for consumer in outputs[op]:
            inputs[consumer].remove(op)
            if not inputs[consumer]:
                sources.append(consumer)
        result.append(op)
    assert len(result) == len(operations)
    return result


def identify_redundant_ops(graph):
    """tf-keras' basic common-subexpression elimination: (number of duplicate ops inside
    APPLY_SCOPE, an example name and type of each kind)."""
    duplicates = collections.defaultdict(list)
    unified_node_defs, name_map = {}, {}
    for op in _topological_sort(graph):
        input_names = []
        for op_input, name in zip(*_inputs(op)):
            input_def = op_input.node_def
            input_def.name = name
            input_def.input[:] = [name_map.get(i, i) for i in input_def.input]
            _strip_name(input_def)
            key = repr(input_def)
            if key in unified_node_defs:
                input_names.append(unified_node_defs[key])
            else:
                unified_node_defs[key] = op_input.name
                input_names.append(name)
        node_def = op.node_def
        node_def.input[:] = input_names
        _strip_name(node_def)
        key = repr(node_def)
        duplicates[key].append(op)
        name_map[op.name] = duplicates[key][0].name

    count, examples = 0, []
    for ops in duplicates.values():
        ops = [op for op in ops if APPLY_SCOPE in op.name]
        if len(ops) < _NUM_LEARNERS:
            continue
        name, op_type = ops[0].name, ops[0].type
        if any(scope in name and op_type == kind for scope, kind in ALLOWLIST):
            continue
        count += len(ops)
        examples.append(f"{op_type} {name}")
    return count, examples


def _make_model():
    inputs, intermediates = [], []
    for _ in range(_NUM_LEARNERS):
        inp = tf.keras.layers.Input(shape=(1,), dtype=tf.int32)
        layer = tf.keras.layers.Embedding(1, 4)(inp)
        inputs.append(inp)
        intermediates.append(tf.keras.layers.Dense(1)(layer))
    layer = tf.keras.layers.Concatenate(axis=-1)(intermediates)
    return tf.keras.models.Model(inputs, tf.keras.layers.Dense(1)(layer))


def _duplicates(optimizer):
    graph = tf.Graph()
    with graph.as_default():
        model = _make_model()
        variables = model.trainable_variables
        grads = optimizer.get_gradients(model.outputs[0], variables)
        with tf.keras.backend.name_scope(APPLY_SCOPE):
            optimizer.apply_gradients(zip(grads, variables))
    count, examples = identify_redundant_ops(graph)
    return count, len(graph.get_operations()), examples


def test_keras_adam_has_no_duplicate_ops():
    # The control: the check itself, on the optimizer tf-keras holds to it.
    count, total, examples = _duplicates(tf.keras.optimizers.legacy.Adam(amsgrad=True))
    assert count == 0, f"{count} of {total} ops were duplicates: {examples[:3]}"


@pytest.mark.parametrize("path", ["kernel", "reference"])
@pytest.mark.parametrize("kwargs", [{}, {"bound_target": 0.04}, {"bound_target": None}],
                         ids=["default", "float_target", "no_bound"])
def test_no_duplicate_ops(kwargs, path):
    with fast.use(path):
        count, total, examples = _duplicates(legacy.BAMSProd(**kwargs))
    assert count == 0, f"{count} of {total} ops were duplicates: {examples[:3]}"


@pytest.mark.parametrize("path", ["kernel", "reference"])
def test_new_api_reads_the_learning_rate_once_per_step(path):
    # The new-API class has no get_gradients: count the reads of its learning-rate
    # variable in one traced step. With bias_correction=False and no decay no arithmetic
    # touched it, so it reached every variable's update as the variable and was read there.
    optimizer = BAMSProd(bias_correction=False, bound_target=None)
    variables = [tf.Variable(tf.zeros([3])) for _ in range(4)]
    step = tf.function(lambda: optimizer.apply_gradients(
        [(tf.ones([3]), v) for v in variables]))
    with fast.use(path):
        graph = step.get_concrete_function().graph
    captured = {id(outer): inner for outer, inner in graph.captures}
    handle = captured[id(optimizer._learning_rate.handle)]
    reads = [op for op in graph.get_operations()
             if op.type == "ReadVariableOp" and op.inputs[0] is handle]
    assert len(reads) == 1, [op.name for op in reads]
