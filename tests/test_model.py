import torch

from tricks.training.model import baseline_net, count_parameters, insert_after


def test_parameter_count_matches_the_tensorflow_tutorial_net():
    assert count_parameters(baseline_net()) == 122_570


def test_layer_shapes_and_log_softmax_output():
    m = baseline_net()
    x = torch.zeros(5, 3, 32, 32)
    feats = m[:9](x)  # up to flatten
    assert feats.shape == (5, 1024)
    out = m(torch.randn(5, 3, 32, 32))
    assert out.shape == (5, 10)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(5), atol=1e-5)


def test_no_padding_in_convolutions():
    m = baseline_net()
    assert all(c.padding == (0, 0) and c.kernel_size == (3, 3) for c in (m.conv1, m.conv2, m.conv3))


def test_insert_after_refuses_unknown_anchor_and_duplicate_name():
    m = baseline_net()
    m2 = insert_after(m, "relu4", "drop", torch.nn.Dropout(0.1))
    names = [n for n, _ in m2.named_children()]
    assert names[names.index("relu4") + 1] == "drop"
    import pytest

    with pytest.raises(ValueError, match="no layer named"):
        insert_after(m, "relu9", "x", torch.nn.Identity())
    with pytest.raises(ValueError, match="already has"):
        insert_after(m2, "relu1", "drop", torch.nn.Identity())
