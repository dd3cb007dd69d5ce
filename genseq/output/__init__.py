"""What a person keeps: audio, plots, engraved scores and the report page."""
