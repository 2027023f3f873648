// Builds tests/testing/test_pch.h's precompiled header, which every test
// reuses (crucible_test in the top CMakeLists.txt); nothing of its own.
