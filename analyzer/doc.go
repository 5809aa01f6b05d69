package analyzer
