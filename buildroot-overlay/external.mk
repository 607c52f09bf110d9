include $(sort $(wildcard $(BR2_EXTERNAL_GLORY_HOLE_PATH)/package/*/*.mk))
