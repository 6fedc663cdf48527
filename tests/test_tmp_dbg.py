from test_pages import new_app, click_map, fake_map  # noqa

def tree(node, depth=0, out=None):
    out = [] if out is None else out
    for i, ch in (node.children.items() if hasattr(node, "children") else []):
        out.append("  " * depth + f"{i}:{ch.type}:{str(getattr(ch, 'value', getattr(ch, 'label', '')))[:50]!r}")
        tree(ch, depth + 1, out)
    return out

def test_dbg(fake_map):
    at = new_app(); at.switch_page("pages/data.py").run()
    t1 = tree(at.main)
    click_map(at, "data_map", -200.0, 200.0)
    at.run()
    t2 = tree(at.main)
    import difflib
    print("\n".join(difflib.unified_diff(t1, t2, lineterm="")))
    print("LEN", len(t1), len(t2))
