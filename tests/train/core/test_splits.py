

def test_group_roots_joins_items_that_share_any_key_transitively():
    from edge_s2s.train.core.splits import group_roots

    keys = [["a"], ["b"], ["a", "c"], ["c", "d"], ["e"], ["d"], []]
    # 0-2 share "a", 2-3 share "c", 3-5 share "d": one group rooted at 0; 1, 4 and 6 alone
    assert group_roots(keys) == [0, 1, 0, 0, 4, 0, 6]
    assert group_roots([]) == []
