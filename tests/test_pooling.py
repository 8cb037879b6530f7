from __future__ import annotations

import numpy as np

from embeddings.pooling import l2_normalize, mean_pool, softmax


def test_mean_pool_ignores_padded_tokens():
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask), [[2.0, 3.0]])


def test_mean_pool_of_fully_masked_row_is_zero_not_nan():
    hidden = np.ones((1, 2, 3), dtype=np.float32)
    assert np.all(mean_pool(hidden, np.zeros((1, 2))) == 0)


def test_l2_normalize_gives_unit_float32_rows():
    vectors = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], [0.6, 0.8])
    assert np.all(vectors[1] == 0)


def test_softmax_rows_sum_to_one_and_keep_order():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(axis=1), [1.0, 1.0])
    assert p[0].argmax() == 0
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
