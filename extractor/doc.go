package extractor
