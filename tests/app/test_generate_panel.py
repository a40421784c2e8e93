"""What a model's tokenizer only logs (a prompt cut at its token limit) reaches the page."""
from __future__ import annotations

import logging

from studio.app.generate_panel import truncation_notes


def test_a_cut_prompt_is_noticed_and_other_warnings_are_not():
    logger = logging.getLogger("diffusers.pipelines.fake_pipeline")
    with truncation_notes() as notes:
        logger.warning("The following part of your input was truncated because CLIP can only handle sequences "
                       "up to 16 tokens: ['strong contrast at dusk']")
        logging.getLogger("transformers.generation").warning("Setting pad_token_id to eos_token_id")
    assert notes == ["strong contrast at dusk"]
    logger.warning("The following part of your input was truncated: ['after the block']")
    assert notes == ["strong contrast at dusk"]  # only while generating
