package persist
