import pytest


def _step_matches_torch(model, step_session, t_enc, B: int, N: int, K: int, vocab_tokens: int = 20) -> dict:
    """Run the exported step for N rows over the B encoded items (row = i % B, K top-k) in ORT and in
    torch; assert shapes and values (topk_ids by shape only: ties may order differently); the ORT
    outputs by name."""
    import numpy as np
    import torch

    from edge_s2s.export import graphs as og

    states = model.initial_states(t_enc)
    row = torch.arange(N) % B
    args = (torch.arange(N) % vocab_tokens + 4, row, row.clone(), torch.tensor([K]),
            *(t_enc[n] for n in model.memory_names), *(states[s.name] for s in model.state_specs()))
    names = model.step_output_names()
    o = step_session.run(names, dict(zip(model.step_input_names(), og.to_numpy(args))))
    with torch.no_grad():
        t = model.step(*args)
    for name, value in zip(names, o):
        assert value.shape == tuple(t[name].shape), name
        if name != "topk_ids":
            assert np.allclose(value, t[name].detach().numpy(), atol=1e-5), name
    return dict(zip(names, o))


@pytest.fixture
def step_matches_torch():
    """The ORT-vs-torch step check shared by the dynamic-axes tests of every decoder."""
    return _step_matches_torch
