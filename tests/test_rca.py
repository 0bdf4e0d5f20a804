import numpy as np
import torch

from segqual_lite.rca import choose_references, rca_scores


def test_rca_scores_a_perfect_prediction_above_a_poor_one():
    # Dark square lesions on light skin: a reverse classifier trained on the right mask
    # segments the references well; one trained on a wrong mask does not.
    rng = np.random.default_rng(0)
    n, size = 6, 24
    images = np.full((n, 3, size, size), 200, dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(2, 12, 2)
        masks[i, r : r + 10, c : c + 10] = 1
        images[i][:, masks[i] == 1] = 60
    images = torch.from_numpy(images + rng.integers(0, 10, images.shape).astype(np.uint8))
    masks = torch.from_numpy(masks)
    test_images = images[:1].repeat(3, 1, 1, 1)
    perfect = masks[0]
    poor = torch.zeros_like(perfect)
    poor[:12, :] = 1  # half the image, unrelated to the lesion
    empty = torch.zeros_like(perfect)
    refs = choose_references(5, 4, seed=0) + 1
    scores, best = rca_scores(
        test_images, torch.stack([perfect, poor, empty]), images[refs], masks[refs]
    )
    assert scores[0] > 0.8 and scores[0] > scores[1] + 0.3
    assert scores[2] == 0 and best[2] == -1  # degenerate mask
    again, _ = rca_scores(
        test_images, torch.stack([perfect, poor, empty]), images[refs], masks[refs]
    )
    assert np.array_equal(scores, again)  # deterministic
