"""Small pretrained models shipped with genseq (`genseq sample folk-abc-small`); run folders land here too."""
